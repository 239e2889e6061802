#include "publisher.h"

/* Order: the night-to-night comparison first (it writes changes.csv, which
 * the other outputs then carry, and the `changes` section the report shows),
 * then cvm.sqlite (every CSV, and the manifest so far), then the report
 * (which shows the timings of the publishers before it), then the load to
 * PostgreSQL, which should see the complete run and is the only publisher
 * that touches another system. Each file defines its cvm_publisher. */
extern const cvm_publisher cvm_publisher_changes;
extern const cvm_publisher cvm_publisher_sqlite;
extern const cvm_publisher cvm_publisher_report;
extern const cvm_publisher cvm_publisher_postgres;

const cvm_publisher *const cvm_job_publishers[] = {
    &cvm_publisher_changes,
    &cvm_publisher_sqlite,
    &cvm_publisher_report,
    &cvm_publisher_postgres,
    NULL,
};
