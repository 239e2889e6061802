/* Placeholder until the CLI lands. */
#include <stdio.h>
int main(void) { puts("cvm " CVM_VERSION); return 0; }
