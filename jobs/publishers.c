#include "publisher.h"

/* Order: files first (SQLite, then the report, which may read it), then the
 * night-to-night comparison, then loads to external systems, which should
 * see the complete run. No publisher is registered yet. */
const cvm_publisher *const cvm_job_publishers[] = {
    NULL,
};
