/*
 * actions.h - one recommended action per customer from a rule table, with a
 * reason a person can read.
 *
 * A rule is (when, action, text, priority). `when` is a conjunction of
 * conditions joined by '&', each `column=value` or `column=v1|v2|...`
 * (`column!=value` negates), where column is any string or integer column of
 * the customer table (grid_class, grade, rfm_segment, volume_tier,
 * customer_type, region, pareto_top, cluster_label, churn_risk...), or the
 * word `default` / `*` which always matches. Rules are tried in order; the
 * first match wins. A condition on a column that does not exist never
 * matches (so a table written for richer data degrades gracefully), and the
 * run reports such rules.
 *
 * The reason names the facts behind the matched conditions, e.g.
 * "class G: large volume, satisfaction 2.1/5, 4 complaints".
 */
#ifndef CVM_ACTIONS_H
#define CVM_ACTIONS_H

#include <stddef.h>

#include "error.h"
#include "table.h"

typedef struct cvm_action_rule {
    const char *when;
    const char *action;    /* code, e.g. KEY_ACCOUNT_CARE */
    const char *text;      /* what to do, for people */
    int priority;          /* 1 = most urgent; written to the output */
    int source_line;       /* config line, for messages (0 = unknown) */
} cvm_action_rule;

typedef struct cvm_actions_params {
    const cvm_action_rule *rules;
    size_t n_rules;
    const char *source;    /* config file name, for messages */
    int threads;           /* 0: OpenMP's default */
} cvm_actions_params;

typedef struct cvm_actions_result {
    size_t *rule_hits;     /* per rule, owned: free with cvm_actions_result_clear */
    size_t n_rules;
    size_t unmatched;
    size_t rules_on_missing_columns;
} cvm_actions_result;

/** @brief NULL or the reason the rules are malformed (checked before any work). */
const char *cvm_actions_params_check(const cvm_actions_params *p, char *buf, size_t len);
/** @brief Adds action, action_text, action_priority, action_reason. */
int cvm_actions_run(const cvm_actions_params *p, cvm_custtab *ct, cvm_actions_result *res,
                    cvm_err *err);
void cvm_actions_result_clear(cvm_actions_result *r);

#endif
