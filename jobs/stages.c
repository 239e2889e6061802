#include "stage.h"

/* Run order: segments first (a cluster label can key an action), then
 * purchase cycles (churn and next-purchase dates), then association rules
 * (cross-sell). Each stage's file defines its cvm_stage. */
extern const cvm_stage cvm_stage_kmeans;
extern const cvm_stage cvm_stage_cycles;
extern const cvm_stage cvm_stage_rules;

const cvm_stage *const cvm_job_stages[] = {
    &cvm_stage_kmeans,
    &cvm_stage_cycles,
    &cvm_stage_rules,
    NULL,
};
