#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

int cvm_threads(int requested)
{
    if (requested > 0)
        return requested;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
