#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publisher.h"
#include "stage.h"

#define NR 1, 0 /* no range (min > max) */

static const cvm_cfg_key core_schema[] = {
    /* ---- job ---- */
    {"job.name", CVM_CFG_STRING, "nightly", NR, NULL,
     "Name of the job; run directories are called NAME-YYYYMMDDTHHMMSSZ."},
    {"job.seed", CVM_CFG_INT, "42", 0, 4294967295.0, NULL,
     "Seed of every random number generator (k-means seeding, samples). Same seed, config "
     "and input give the same output bytes whatever the thread count."},
    {"job.threads", CVM_CFG_INT, "0", 0, 1024, NULL,
     "Worker threads; 0 = all cores (OpenMP default). --threads overrides."},
    {"job.partitions", CVM_CFG_INT, "1", 1, 65536, NULL,
     "Split customers into this many hash partitions (by their id) and process only "
     "job.partition: N runs (or machines) each take 1/N of the customers. Scores and "
     "percentiles are then relative to the partition."},
    {"job.partition", CVM_CFG_INT, "0", 0, 65535, NULL,
     "Which partition this run processes, 0..job.partitions-1."},

    /* ---- input.transactions ---- */
    {"input.transactions.path", CVM_CFG_STRING, NULL, NR, NULL,
     "Transactions CSV, one line per order line. Relative paths are relative to the job file."},
    {"input.transactions.delimiter", CVM_CFG_STRING, ",", NR, NULL,
     "Field delimiter: one character, or \"tab\"."},
    {"input.transactions.header", CVM_CFG_BOOL, "true", NR, NULL,
     "The first line holds column names. Without a header the columns.* keys are 1-based column numbers."},
    {"input.transactions.date_format", CVM_CFG_STRING, "auto", NR, NULL,
     "strptime-style format of the date column (%Y %y %m %d %b %H %M %S), e.g. \"%m/%d/%Y %H:%M\"; "
     "\"auto\" accepts ISO dates and date-times (YYYY-MM-DD, YYYYMMDD, optional [T ]HH:MM[:SS][Z|+hh:mm])."},
    {"input.transactions.chunk_mb", CVM_CFG_INT, "16", 1, 1024, NULL,
     "Size of the chunks parsed in parallel. Results do not depend on it."},
    {"input.cache", CVM_CFG_BOOL, "false", NR, NULL,
     "Keep the ingested transaction table in a binary parse cache and reuse it while the "
     "transactions file, the customer master and the ingest settings (input.transactions.*, "
     "cleaning.*, job.partitions) are unchanged: re-runs that change only model settings skip the "
     "CSV parse. Verified on load; a corrupt cache is re-parsed with a warning. --no-cache bypasses it."},
    {"input.cache_dir", CVM_CFG_STRING, "", NR, NULL,
     "Directory of the parse cache; \"\" = OUTPUT_DIR/.cache."},
    {"input.transactions.columns.customer", CVM_CFG_STRING, "customer_id", NR, NULL,
     "Column with the customer id (required)."},
    {"input.transactions.columns.order", CVM_CFG_STRING, "order_id", NR, NULL,
     "Column with the order (invoice) id. \"\": none, each purchase day of a customer is one order."},
    {"input.transactions.columns.date", CVM_CFG_STRING, "date", NR, NULL,
     "Column with the order date or date-time (required)."},
    {"input.transactions.columns.product", CVM_CFG_STRING, "product_id", NR, NULL,
     "Column with the product id (optional: needed for exclusions, product costs and rules)."},
    {"input.transactions.columns.quantity", CVM_CFG_STRING, "quantity", NR, NULL,
     "Column with the quantity; negative = returned. \"\": every line is quantity 1."},
    {"input.transactions.columns.unit_price", CVM_CFG_STRING, "unit_price", NR, NULL,
     "Column with the unit price; line revenue = quantity x unit_price."},
    {"input.transactions.columns.revenue", CVM_CFG_STRING, "", NR, NULL,
     "Column with the line revenue; when set it is used instead of quantity x unit_price."},
    {"input.transactions.columns.unit_cost", CVM_CFG_STRING, "unit_cost", NR, NULL,
     "Column with the unit cost of goods (optional; else the product master's unit_cost, else "
     "value.default_margin)."},

    /* ---- input.customers ---- */
    {"input.customers.path", CVM_CFG_STRING, NULL, NR, NULL,
     "Optional customer master CSV (type, region, satisfaction, complaints, influence). Missing "
     "columns degrade gracefully; summary.json says how."},
    {"input.customers.delimiter", CVM_CFG_STRING, ",", NR, NULL, "Field delimiter."},
    {"input.customers.columns.id", CVM_CFG_STRING, "customer_id", NR, NULL, "Customer id column (required)."},
    {"input.customers.columns.name", CVM_CFG_STRING, "name", NR, NULL, "Customer name (optional)."},
    {"input.customers.columns.type", CVM_CFG_STRING, "type", NR, NULL,
     "Customer type: hospital, doctor, pharmacy, contact, distributor, patient, or any label."},
    {"input.customers.columns.region", CVM_CFG_STRING, "region", NR, NULL, "Region (optional)."},
    {"input.customers.columns.satisfaction", CVM_CFG_STRING, "satisfaction", NR, NULL,
     "Satisfaction score, 1 (very unhappy) to 5 (very happy)."},
    {"input.customers.columns.complaints", CVM_CFG_STRING, "complaints", NR, NULL,
     "Number of complaints in the period."},
    {"input.customers.columns.influence", CVM_CFG_STRING, "influence", NR, NULL,
     "Market influence (any scale; only its percentile is used)."},

    /* ---- input.products ---- */
    {"input.products.path", CVM_CFG_STRING, NULL, NR, NULL,
     "Optional product master CSV (name, category, unit cost)."},
    {"input.products.delimiter", CVM_CFG_STRING, ",", NR, NULL, "Field delimiter."},
    {"input.products.columns.id", CVM_CFG_STRING, "product_id", NR, NULL, "Product id column."},
    {"input.products.columns.name", CVM_CFG_STRING, "name", NR, NULL, "Product name."},
    {"input.products.columns.category", CVM_CFG_STRING, "category", NR, NULL, "Product category."},
    {"input.products.columns.unit_cost", CVM_CFG_STRING, "unit_cost", NR, NULL,
     "Unit cost of goods, used for lines without their own cost."},

    /* ---- input.interactions ---- */
    {"input.interactions.path", CVM_CFG_STRING, NULL, NR, NULL,
     "Optional interactions CSV: visits, calls, complaint handling, samples, with their cost."},
    {"input.interactions.delimiter", CVM_CFG_STRING, ",", NR, NULL, "Field delimiter."},
    {"input.interactions.date_format", CVM_CFG_STRING, "auto", NR, NULL, "Format of the date column."},
    {"input.interactions.columns.customer", CVM_CFG_STRING, "customer_id", NR, NULL, "Customer id column."},
    {"input.interactions.columns.date", CVM_CFG_STRING, "date", NR, NULL, "Date column."},
    {"input.interactions.columns.kind", CVM_CFG_STRING, "kind", NR, NULL,
     "Kind of interaction (visit, call, complaint, sample, ...)."},
    {"input.interactions.columns.cost", CVM_CFG_STRING, "cost", NR, NULL,
     "Cost of the interaction; empty cells use cost.per_interaction[kind]."},

    /* ---- cleaning ---- */
    {"cleaning.return_order_prefix", CVM_CFG_STRING, "", NR, NULL,
     "Order ids starting with this prefix are returns or cancellations (e.g. \"RT\" or \"C\"). \"\": none."},
    {"cleaning.negative_is_return", CVM_CFG_BOOL, "true", NR, NULL,
     "A line with negative quantity or revenue is a return. Returns reduce revenue and profit "
     "but are not purchases (no effect on recency or frequency)."},
    {"cleaning.exclude_products", CVM_CFG_LIST, "", NR, NULL,
     "Non-product codes (postage, fees, adjustments) left out of revenue, cost and purchases."},
    {"cleaning.drop_duplicates", CVM_CFG_BOOL, "false", NR, NULL,
     "Drop repeated lines (every mapped field equal); each dropped copy goes to rejects.csv as 'duplicate'."},
    {"cleaning.max_reject_ratio", CVM_CFG_DOUBLE, "0.05", 0, 1, NULL,
     "The run fails with exit code 3 when rejected rows / data rows of the transactions file exceed this."},

    /* ---- value ---- */
    {"value.as_of", CVM_CFG_DATE, NULL, NR, NULL,
     "Evaluation date (YYYY-MM-DD): recency is counted to it and later lines are ignored. "
     "Default: the day after the last purchase in the data. --as-of overrides."},
    {"value.window_days", CVM_CFG_INT, "365", 1, 36500, NULL,
     "Days before as_of that make revenue_recent (the one-vote and volume basis)."},
    {"value.default_margin", CVM_CFG_DOUBLE, "0.25", -1, 1, NULL,
     "Margin rate assumed for lines whose cost is unknown (no cost column, no product cost)."},
    {"value.pareto_share", CVM_CFG_DOUBLE, "0.8", 0.01, 1, NULL,
     "Profit share that defines the Pareto top customers (pareto_top)."},

    /* ---- cost ---- */
    {"cost.per_order", CVM_CFG_DOUBLE, "0", 0, 1e12, NULL, "Handling cost per order."},
    {"cost.per_line", CVM_CFG_DOUBLE, "0", 0, 1e12, NULL, "Handling cost per order line."},
    {"cost.per_return_line", CVM_CFG_DOUBLE, "0", 0, 1e12, NULL, "Cost of handling one returned line."},
    {"cost.per_type", CVM_CFG_MAP, "", 0, 1e12, NULL,
     "Flat cost to serve per customer of each type for the period, e.g. {hospital: 1200, doctor: 150}."},
    {"cost.per_type_default", CVM_CFG_DOUBLE, "0", 0, 1e12, NULL,
     "Flat cost for types not listed in cost.per_type (and customers without a type)."},
    {"cost.per_interaction", CVM_CFG_MAP, "", 0, 1e12, NULL,
     "Cost of an interaction of each kind when its cost cell is empty, e.g. {visit: 120, call: 8}."},

    /* ---- rfm ---- */
    {"rfm.bins", CVM_CFG_INT, "5", 2, 10, NULL, "Number of scores per measure (1..bins)."},
    {"rfm.method", CVM_CFG_ENUM, "quantile", NR, "quantile|breaks|frozen",
     "quantile: pandas qcut of rank(method=\"first\") over customers sorted by id (recomputed "
     "every run); breaks: the *_breaks keys; frozen: the cut-offs of an earlier run (rfm.freeze_from)."},
    {"rfm.recency_breaks", CVM_CFG_LIST, "", NR, NULL,
     "bins-1 ascending day counts for method=breaks; recency <= first break scores bins (best)."},
    {"rfm.frequency_breaks", CVM_CFG_LIST, "", NR, NULL,
     "bins-1 ascending order counts; frequency <= first break scores 1."},
    {"rfm.monetary_breaks", CVM_CFG_LIST, "", NR, NULL, "bins-1 ascending net revenue values."},
    {"rfm.freeze_from", CVM_CFG_STRING, "", NR, NULL,
     "For method=frozen: an earlier run directory (or its summary.json) whose rfm.cutoffs are reused, "
     "so nightly scores stay comparable."},
    {"rfm.segments", CVM_CFG_TABLE, NULL, NR, "name|r|f|m",
     "Named segments, first match wins: rows {name, r, f, m} with score ranges like \"4-5\" or \"3\" "
     "(omitted = any). Default: the 11-segment map (Champions, Loyal, Cannot lose, At risk, "
     "Potential loyalist, New, Promising, Need attention, About to sleep, Hibernating, Lost); "
     "unmatched cells are Other."},

    /* ---- grading ---- */
    {"grading.one_vote_revenue", CVM_CFG_DOUBLE, "0", 0, 1e15, NULL,
     "One-vote rule: revenue_recent at or above this is grade A whatever else. 0 disables it."},
    {"grading.basis", CVM_CFG_ENUM, "revenue", NR, "revenue|profit",
     "Value percentile from revenue_recent or from profit."},
    {"grading.tier_high", CVM_CFG_DOUBLE, "0.8", 0.01, 0.99, NULL, "Percentile from which a tier is high."},
    {"grading.tier_mid", CVM_CFG_DOUBLE, "0.5", 0.01, 0.99, NULL, "Percentile from which a tier is mid."},
    {"grading.matrix", CVM_CFG_STRING, "AAB/ABC/BCC", NR, NULL,
     "Grade by value tier (rows high/mid/low) x influence tier (columns high/mid/low), rows "
     "separated by '/'. Used when the customer master has influence."},

    /* ---- grid ---- */
    {"grid.volume_large", CVM_CFG_DOUBLE, "0.8", 0.01, 0.99, NULL,
     "revenue_recent percentile from which volume is large."},
    {"grid.volume_medium", CVM_CFG_DOUBLE, "0.5", 0.01, 0.99, NULL,
     "revenue_recent percentile from which volume is medium."},
    {"grid.satisfaction_high", CVM_CFG_DOUBLE, "4.0", -1e9, 1e9, NULL, "Satisfaction from which it is high."},
    {"grid.satisfaction_medium", CVM_CFG_DOUBLE, "3.0", -1e9, 1e9, NULL, "Satisfaction from which it is medium."},

};

/* After the stages' fragments: the action table and the output. */
static const cvm_cfg_key tail_schema[] = {
    /* ---- actions ---- */
    {"actions.rules", CVM_CFG_TABLE,
     "[{when: \"grid_class=G\", action: FIX_DISSATISFACTION, priority: \"1\","
     " text: \"Visit within a week: resolve the complaints of a large, unhappy account\"},"
     " {when: \"churn_risk=high & grade=A|B\", action: WIN_BACK_KEY_ACCOUNT, priority: \"1\","
     " text: \"Senior call: a valuable customer is probably slipping away\"},"
     " {when: \"grade=A & rfm_segment=At risk|Cannot lose|About to sleep|Hibernating|Lost\","
     " action: WIN_BACK_KEY_ACCOUNT, priority: \"1\","
     " text: \"Senior call: a key account is slipping away\"},"
     " {when: \"overdue=1 & grade=A|B\", action: CALL_OVERDUE, priority: \"1\","
     " text: \"Call now: past the usual reorder date\"},"
     " {when: \"grade=A\", action: KEY_ACCOUNT_CARE, priority: \"2\","
     " text: \"One-to-one key account care: named account manager, call before the next expected order\"},"
     " {when: \"grid_class=H|I\", action: FIX_DISSATISFACTION, priority: \"2\","
     " text: \"Call to resolve dissatisfaction before the account is lost\"},"
     " {when: \"cluster_label=lapsed big spenders\", action: WIN_BACK, priority: \"2\","
     " text: \"Win-back call: a big spender of the past has stopped buying\"},"
     " {when: \"rfm_segment=At risk|Cannot lose\", action: WIN_BACK, priority: \"2\","
     " text: \"Win-back offer: good customer, no recent order\"},"
     " {when: \"churn_risk=high\", action: WIN_BACK, priority: \"3\","
     " text: \"Win-back offer: the purchase model says the customer has probably left\"},"
     " {when: \"next_product!= & rfm_segment=Champions|Loyal|Potential loyalist|New|Promising\","
     " action: CROSS_SELL, priority: \"3\","
     " text: \"Offer the recommended product (next_product, see next_product_reason)\"},"
     " {when: \"overdue=1\", action: REMIND_OVERDUE, priority: \"3\","
     " text: \"Reorder reminder: past the usual reorder date\"},"
     " {when: \"rfm_segment=Lost|Hibernating\", action: REACTIVATE_LOW_TOUCH, priority: \"4\","
     " text: \"Low-cost reactivation mailing\"},"
     " {when: \"volume_tier=large\", action: KEY_ACCOUNT_CARE, priority: \"2\","
     " text: \"One-to-one key account care\"},"
     " {when: \"volume_tier=medium\", action: REP_ONE_TO_MANY, priority: \"3\","
     " text: \"Regional rep, one-to-many: regular visits and calls\"},"
     " {when: \"volume_tier=small\", action: SERVE_VIA_RETAILER, priority: \"4\","
     " text: \"Serve through a retailer or distributor; no direct visits\"},"
     " {when: \"grade=D\", action: ACTIVATE_PROSPECT, priority: \"5\","
     " text: \"No purchases yet: qualify and activate\"},"
     " {when: default, action: NURTURE, priority: \"5\", text: \"Keep in the standard programme\"}]",
     NR, "when|action|text|priority",
     "Rule table: the first rule whose `when` matches gives the customer's action. `when` is "
     "conditions joined by '&', each column=value, column=v1|v2 or column!=value over any "
     "string or integer column of segments.csv, or `default`. `priority` 1 = most urgent."},

    /* ---- output ---- */
    {"output.dir", CVM_CFG_STRING, "out", NR, NULL,
     "Directory that receives one run directory per run and the `latest` link. --out overrides. "
     "Relative to the current directory."},
    {"output.keep_runs", CVM_CFG_INT, "30", 0, 1000000, NULL,
     "Keep the newest N run directories of this job (and N failed-* ones); older ones are removed "
     "after a run. The run `latest` points to is always kept. 0 keeps everything."},
};

const cvm_cfg_key *cvm_job_schema(size_t *n_keys)
{
    static cvm_cfg_key *all;
    static size_t n;
    if (all == NULL) {
        size_t nc = sizeof core_schema / sizeof core_schema[0];
        size_t nt = sizeof tail_schema / sizeof tail_schema[0];
        size_t total = nc + nt;
        for (const cvm_stage *const *s = cvm_job_stages; *s; s++)
            total += (*s)->schema_len;
        for (const cvm_publisher *const *p = cvm_job_publishers; *p; p++)
            total += (*p)->schema_len;
        /* Plain malloc: the table lives for the whole process. */
        all = malloc(total * sizeof *all);
        if (all == NULL) {
            fputs("cvm: out of memory building the config schema\n", stderr);
            abort();
        }
        memcpy(all, core_schema, sizeof core_schema);
        n = nc;
        for (const cvm_stage *const *s = cvm_job_stages; *s; s++) {
            memcpy(all + n, (*s)->schema, (*s)->schema_len * sizeof *all);
            n += (*s)->schema_len;
        }
        memcpy(all + n, tail_schema, sizeof tail_schema);
        n += nt;
        for (const cvm_publisher *const *p = cvm_job_publishers; *p; p++) {
            memcpy(all + n, (*p)->schema, (*p)->schema_len * sizeof *all);
            n += (*p)->schema_len;
        }
    }
    *n_keys = n;
    return all;
}
