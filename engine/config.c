/* Implementation in progress. */
#include "config.h"
