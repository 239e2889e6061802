/* Implementation in progress. */
#include "gen.h"
