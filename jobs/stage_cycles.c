/* The cycles stage: purchase rhythms, overdue customers and reorders,
 * BG/NBD (who is alive, how many purchases to expect) and Gamma-Gamma
 * (what a transaction is worth), CLV, churn risk and a date to call by.
 *
 * Who is modelled: customers with a purchase before as_of. The models'
 * summary (models/cycles.h): x = repeat purchase days, t_x and T from the
 * first purchase to the last purchase and to the last day of data
 * (as_of - 1), in cycles.time_unit; the Gamma-Gamma value is the mean
 * revenue of the repeat purchase days. A fit that does not converge is
 * reported in summary.json and leaves its columns empty; the run goes on.
 *
 * With cycles.calibration_end a second BG/NBD fit on the data up to that
 * day (inclusive) predicts the repeat purchases of the days after it, and
 * summary.json compares them with what happened: totals and the mean
 * absolute error per customer. docs/models/cycles.md has the formulas. */
#include "stage.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "bgnbd.h"
#include "cycles.h"
#include "datetime.h"
#include "gammagamma.h"

#define NR 1, 0

static const cvm_cfg_key schema[] = {
    {"cycles.enabled", CVM_CFG_BOOL, "false", NR, NULL,
     "Run the purchase-cycle stage: own rhythm, next purchase date and overdue days per "
     "customer, reorder cycles per customer x product (cycles.csv), BG/NBD P(alive) and "
     "expected purchases, Gamma-Gamma expected value, CLV, churn risk and a contact date."},
    {"cycles.time_unit", CVM_CFG_ENUM, "days", NR, "days|weeks",
     "Time unit of the BG/NBD model (recency, age and alpha); weeks are days / 7, unrounded. "
     "Predictions do not depend on it, only the scale of alpha."},
    {"cycles.min_intervals", CVM_CFG_INT, "2", 1, 1000, NULL,
     "Intervals between distinct purchase days a customer needs before their own rhythm "
     "(median interval, next purchase date, overdue days) is reported."},
    {"cycles.overdue_rule", CVM_CFG_ENUM, "quantile", NR, "quantile|zscore",
     "When a customer (or a reorder) is overdue: quantile = more days since the last purchase "
     "than the cycles.overdue_param quantile of the own intervals; zscore = more than "
     "mean + cycles.overdue_param x standard deviation."},
    {"cycles.overdue_param", CVM_CFG_DOUBLE, "0.9", 0, 100, NULL,
     "Parameter of cycles.overdue_rule: the quantile level in (0, 1] (0.9: later than 9 in 10 "
     "of the own intervals), or z for zscore (e.g. 2)."},
    {"cycles.contact_lead_days", CVM_CFG_INT, "3", 0, 365, NULL,
     "contact_by is this many days before the expected next purchase (and never before as_of)."},
    {"cycles.products", CVM_CFG_BOOL, "true", NR, NULL,
     "Write cycles.csv: the reorder rhythm of every customer x product pair with enough "
     "history (needs a product column)."},
    {"cycles.product_min_intervals", CVM_CFG_INT, "2", 1, 1000, NULL,
     "Intervals between distinct purchase days of one product a customer x product pair needs "
     "to appear in cycles.csv."},
    {"cycles.horizon_days", CVM_CFG_INT, "365", 1, 36500, NULL,
     "Horizon of expected_purchases and clv, in days."},
    {"cycles.discount_rate", CVM_CFG_DOUBLE, "0.10", 0, 10, NULL,
     "Yearly discount rate of clv (effective; applied continuously over the horizon)."},
    {"cycles.margin", CVM_CFG_ENUM, "column", NR, "column|fixed",
     "Margin of clv: column = the customer's own margin_rate (gross margin / net revenue, "
     "clamped to [-1, 1]; cycles.margin_rate when empty); fixed = cycles.margin_rate for all."},
    {"cycles.margin_rate", CVM_CFG_DOUBLE, "0.25", -1, 1, NULL,
     "Margin rate of clv when cycles.margin is fixed or the customer's margin_rate is empty."},
    {"cycles.calibration_end", CVM_CFG_DATE, NULL, NR, NULL,
     "Holdout check: fit BG/NBD on the purchases up to this day (inclusive), predict the repeat "
     "purchases of the days after it up to as_of - 1 and report predicted against actual "
     "(total and per-customer mean absolute error) in summary.json. Empty: no check."},
    {"cycles.churn_threshold", CVM_CFG_DOUBLE, "0.5", 0, 1, NULL,
     "churn_risk is high when P(alive) is below this; medium when not, but overdue against "
     "the own rhythm; low otherwise."},
    {"cycles.max_iterations", CVM_CFG_INT, "400", 10, 100000, NULL,
     "Bound on the iterations of each optimiser run of the BG/NBD and Gamma-Gamma fits."},
};

static int check(const cvm_config *cfg, const char *source, cvm_err *err)
{
    double q = cvm_config_double(cfg, "cycles.overdue_param");
    const char *rule = cvm_config_str(cfg, "cycles.overdue_rule");
    if (strcmp(rule, "quantile") == 0 && !(q > 0 && q <= 1))
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: cycles.overdue_param = %g must be a quantile level in (0, 1] with "
                        "cycles.overdue_rule = quantile", source, q);
    return CVM_OK;
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The models' view of the customers who bought: compact arrays. */
typedef struct sample {
    size_t n;
    size_t *idx;          /* customer index of each entry */
    double *x, *tx, *T, *m, *hold;
} sample;

static void sample_clear(sample *s)
{
    cvm_free(s->idx);
    cvm_free(s->x);
    cvm_free(s->tx);
    cvm_free(s->T);
    cvm_free(s->m);
    cvm_free(s->hold);
    memset(s, 0, sizeof *s);
}

static int sample_build(const cvm_stage_ctx *ctx, int32_t end_day, double unit,
                        int32_t holdout_end, bool with_holdout, sample *s, cvm_err *err)
{
    memset(s, 0, sizeof *s);
    size_t n = ctx->txn->n_customers, k = n ? n : 1;
    double *x = cvm_malloc(k * sizeof *x), *tx = cvm_malloc(k * sizeof *tx),
           *T = cvm_malloc(k * sizeof *T), *m = cvm_malloc(k * sizeof *m),
           *h = with_holdout ? cvm_malloc(k * sizeof *h) : NULL;
    uint8_t *act = cvm_malloc(k);
    s->idx = cvm_malloc(k * sizeof *s->idx);
    int rc = CVM_OK;
    if (!x || !tx || !T || !m || !act || !s->idx || (with_holdout && !h))
        rc = CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory for %zu customers", n);
    if (rc == CVM_OK)
        rc = cvm_cycles_summary(ctx->txn, end_day, unit, holdout_end, ctx->threads, x, tx, T, m,
                                act, h, err);
    if (rc == CVM_OK) {
        /* Compact in place: entry j <= customer i. */
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (act[i]) {
                s->idx[j] = i;
                x[j] = x[i];
                tx[j] = tx[i];
                T[j] = T[i];
                m[j] = m[i];
                if (h)
                    h[j] = h[i];
                j++;
            }
        s->n = j;
    }
    s->x = x;
    s->tx = tx;
    s->T = T;
    s->m = m;
    s->hold = h;
    cvm_free(act);
    if (rc != CVM_OK)
        sample_clear(s);
    return rc;
}

static json_t *bgnbd_json(const cvm_bgnbd_result *r)
{
    json_t *o = json_object(), *se = json_object();
    json_object_set_new(o, "r", jnum(r->params.r));
    json_object_set_new(o, "alpha", jnum(r->params.alpha));
    json_object_set_new(o, "a", jnum(r->params.a));
    json_object_set_new(o, "b", jnum(r->params.b));
    json_object_set_new(o, "loglik", jnum(r->loglik));
    json_object_set_new(o, "iterations", json_integer(r->iterations));
    json_object_set_new(o, "converged", json_boolean(r->converged));
    json_object_set_new(o, "status", json_string(r->status ? r->status : "not_run"));
    json_object_set_new(se, "r", jnum(r->se[0]));
    json_object_set_new(se, "alpha", jnum(r->se[1]));
    json_object_set_new(se, "a", jnum(r->se[2]));
    json_object_set_new(se, "b", jnum(r->se[3]));
    json_object_set_new(o, "std_errors", se);
    json_object_set_new(o, "customers", json_integer((json_int_t)r->n));
    json_object_set_new(o, "repeat_customers", json_integer((json_int_t)r->n_repeaters));
    return o;
}

/* Predicted against actual repeat purchases after calibration_end. */
static int holdout_report(const cvm_stage_ctx *ctx, const cvm_bgnbd_opts *bo, int32_t cut,
                          double unit, json_t *out, cvm_err *err)
{
    int32_t last = ctx->as_of - 1;
    sample s;
    CVM_TRY(sample_build(ctx, cut, unit, last, true, &s, err));
    cvm_bgnbd_data d = {s.n, s.x, s.tx, s.T};
    cvm_bgnbd_result r;
    int rc = cvm_bgnbd_fit(bo, &d, &r, err);
    if (rc != CVM_OK) {
        sample_clear(&s);
        return rc;
    }
    char day[11];
    cvm_date_format(cut, day);
    json_object_set_new(out, "calibration_end", json_string(day));
    json_object_set_new(out, "holdout_days", json_integer(last - cut));
    json_object_set_new(out, "calibration", bgnbd_json(&r));
    double actual = 0;
    for (size_t i = 0; i < s.n; i++)
        actual += s.hold[i];
    json_object_set_new(out, "actual_total", json_real(actual));
    if (r.converged) {
        double *pred = cvm_malloc((s.n ? s.n : 1) * sizeof *pred);
        if (pred == NULL) {
            sample_clear(&s);
            return CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
        }
        double t = (double)(last - cut) / unit;
        cvm_bgnbd_score(&r.params, &d, t, 0, ctx->threads, NULL, pred, NULL);
        double total = 0, mae = 0;
        for (size_t i = 0; i < s.n; i++) {
            total += pred[i];
            mae += fabs(pred[i] - s.hold[i]);
        }
        json_object_set_new(out, "predicted_total", json_real(total));
        json_object_set_new(out, "mae", jnum(s.n ? mae / (double)s.n : NAN));
        cvm_free(pred);
    } else {
        json_object_set_new(out, "predicted_total", json_null());
        json_object_set_new(out, "mae", json_null());
    }
    sample_clear(&s);
    return CVM_OK;
}

static int write_pairs(const cvm_stage_ctx *ctx, const cvm_cycle_pair *pr, size_t np, cvm_err *err)
{
    char *path;
    FILE *f = cvm_rundir_create(ctx->rd, "cycles.csv", &path, err);
    if (f == NULL)
        return err->status;
    fputs("customer_id,product_id,n_purchases,mean_interval_days,median_interval_days,interval_cv,"
          "last_purchase,next_reorder,days_overdue\n", f);
    for (size_t i = 0; i < np; i++) {
        const cvm_cycle *c = &pr[i].c;
        cvm_csv_put(f, cvm_dict_str(ctx->txn->customers, pr[i].customer),
                    cvm_dict_len(ctx->txn->customers, pr[i].customer));
        fputc(',', f);
        cvm_csv_put(f, cvm_dict_str(ctx->txn->products, pr[i].product),
                    cvm_dict_len(ctx->txn->products, pr[i].product));
        char last[11], next[11], cv[32] = "";
        cvm_date_format(c->last_day, last);
        cvm_date_format(c->next_day, next);
        if (isfinite(c->cv))
            snprintf(cv, sizeof cv, "%.4f", c->cv);
        fprintf(f, ",%d,%.2f,%.1f,%s,%s,%s,%d\n", c->n_days, c->mean, c->median, cv, last, next,
                c->days_overdue);
    }
    int rc = cvm_publish_close(f, path, err);
    cvm_free(path);
    return rc;
}

typedef struct cols {
    double *median, *after, *pa, *ex, *ev, *clv;
    int32_t *next, *contact;
    int64_t *late, *overdue;
    char **risk, **reason;
} cols;

static int add_columns(cvm_custtab *ct, const char *unit, cols *c, cvm_err *err)
{
    char doc[400];
#define ADD(x) if ((x) == NULL) return err->status
    ADD(c->median = cvm_custtab_add_double(ct, "median_interval_days", "days",
        "Median gap between distinct purchase days (empty with fewer than cycles.min_intervals "
        "gaps): the customer's usual rhythm.", 1, err));
    ADD(c->after = cvm_custtab_add_double(ct, "overdue_after_days", "days",
        "Days since the last purchase after which the customer is overdue "
        "(cycles.overdue_rule over the own gaps).", 1, err));
    ADD(c->next = cvm_custtab_add_date(ct, "next_purchase_date",
        "Expected next purchase: last purchase + median_interval_days.", err));
    ADD(c->late = cvm_custtab_add_int(ct, "days_overdue", "days",
        "recency_days beyond overdue_after_days (0 when not overdue; empty without a rhythm).", err));
    ADD(c->overdue = cvm_custtab_add_int(ct, "overdue", "flag",
        "1 when days_overdue > 0, 0 when not, empty without a rhythm.", err));
    ADD(c->pa = cvm_custtab_add_double(ct, "p_alive", "share",
        "BG/NBD probability that the customer is still active (empty when the fit did not "
        "converge). 1 for customers with a single purchase day: the model cannot tell.", 4, err));
    snprintf(doc, sizeof doc, "BG/NBD expected purchase days in the next cycles.horizon_days "
             "(fitted in %s).", unit);
    ADD(c->ex = cvm_custtab_add_double(ct, "expected_purchases", "purchases", doc, 3, err));
    ADD(c->ev = cvm_custtab_add_double(ct, "expected_avg_value", "currency",
        "Gamma-Gamma expected value of a purchase day: the own mean of the repeat purchases "
        "shrunk towards the population mean.", 2, err));
    ADD(c->clv = cvm_custtab_add_double(ct, "clv", "currency",
        "Customer lifetime value over cycles.horizon_days: margin x expected_avg_value x "
        "discounted expected purchases.", 2, err));
    ADD(c->risk = cvm_custtab_add_str(ct, "churn_risk",
        "high: P(alive) below cycles.churn_threshold; medium: overdue against the own rhythm; "
        "low: neither.", err));
    ADD(c->contact = cvm_custtab_add_date(ct, "contact_by",
        "Call before this day: cycles.contact_lead_days before next_purchase_date, not before "
        "as_of.", err));
    ADD(c->reason = cvm_custtab_add_str(ct, "cycle_reason",
        "The rhythm in words, e.g. \"call before 2026-12-03: usually orders every 28 days, last "
        "order 26 days ago\".", err));
#undef ADD
    return CVM_OK;
}

static int run(cvm_stage_ctx *ctx, cvm_err *err)
{
    const cvm_config *cfg = ctx->cfg;
    const cvm_txn_table *t = ctx->txn;
    cvm_custtab *ct = ctx->ct;
    const size_t n = t->n_customers;
    const int32_t as_of = ctx->as_of, last_day = as_of - 1;
    const bool weeks = strcmp(cvm_config_str(cfg, "cycles.time_unit"), "weeks") == 0;
    const double unit = weeks ? 7.0 : 1.0;
    const double horizon_days = (double)cvm_config_int(cfg, "cycles.horizon_days");
    const double yearly = cvm_config_double(cfg, "cycles.discount_rate");
    const bool margin_column = strcmp(cvm_config_str(cfg, "cycles.margin"), "column") == 0;
    const double margin_fixed = cvm_config_double(cfg, "cycles.margin_rate");
    const double churn = cvm_config_double(cfg, "cycles.churn_threshold");
    const int lead = (int)cvm_config_int(cfg, "cycles.contact_lead_days");

    int32_t cut = CVM_DATE_NONE;
    if (cvm_config_is_set(cfg, "cycles.calibration_end") &&
        *cvm_config_str(cfg, "cycles.calibration_end") != '\0') {
        const char *s = cvm_config_str(cfg, "cycles.calibration_end");
        if (!cvm_date_parse_iso(s, &cut))
            return CVM_FAIL(err, CVM_ECONFIG, "%s: cycles.calibration_end = '%s' is not a date",
                            ctx->cfg_source, s);
        if (cut >= last_day) {
            char d[11];
            cvm_date_format(last_day, d);
            return CVM_FAIL(err, CVM_ECONFIG,
                            "%s: cycles.calibration_end = %s leaves no holdout: it must be before "
                            "the last day of data, %s (as_of - 1)", ctx->cfg_source, s, d);
        }
    }

    cvm_cycles_params cp;
    cvm_cycles_params_default(&cp);
    cp.as_of = as_of;
    cp.min_intervals = (int)cvm_config_int(cfg, "cycles.min_intervals");
    cp.product_min_intervals = (int)cvm_config_int(cfg, "cycles.product_min_intervals");
    cp.rule = strcmp(cvm_config_str(cfg, "cycles.overdue_rule"), "zscore") == 0
                  ? CVM_OVERDUE_ZSCORE : CVM_OVERDUE_QUANTILE;
    cp.rule_param = cvm_config_double(cfg, "cycles.overdue_param");
    cp.threads = ctx->threads;
    const char *why = cvm_cycles_params_check(&cp);
    if (why)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: cycles: %s", ctx->cfg_source, why);

    cvm_bgnbd_opts bo;
    cvm_bgnbd_opts_default(&bo);
    bo.max_iter = (int)cvm_config_int(cfg, "cycles.max_iterations");
    bo.threads = ctx->threads;
    cvm_gammagamma_opts go;
    cvm_gammagamma_opts_default(&go);
    go.max_iter = bo.max_iter;
    go.threads = ctx->threads;

    cols C;
    memset(&C, 0, sizeof C);
    CVM_TRY(add_columns(ct, weeks ? "weeks" : "days", &C, err));

    /* Own rhythms. */
    cvm_cycle *cyc = cvm_calloc(n ? n : 1, sizeof *cyc);
    if (cyc == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory for %zu customers", n);
    int rc = cvm_cycles_customers(&cp, t, cyc, err);

    /* The models. */
    sample s;
    memset(&s, 0, sizeof s);
    double *pa = NULL, *ex = NULL, *det = NULL, *ev = NULL;
    cvm_bgnbd_result br;
    cvm_gammagamma_result gr;
    memset(&br, 0, sizeof br);
    memset(&gr, 0, sizeof gr);
    if (rc == CVM_OK)
        rc = sample_build(ctx, last_day, unit, last_day, false, &s, err);
    if (rc == CVM_OK) {
        size_t k = s.n ? s.n : 1;
        pa = cvm_malloc(k * sizeof *pa);
        ex = cvm_malloc(k * sizeof *ex);
        det = cvm_malloc(k * sizeof *det);
        ev = cvm_malloc(k * sizeof *ev);
        if (!pa || !ex || !det || !ev)
            rc = CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
    }
    cvm_bgnbd_data bd = {s.n, s.x, s.tx, s.T};
    cvm_gammagamma_data gd = {s.n, s.x, s.m};
    if (rc == CVM_OK)
        rc = cvm_bgnbd_fit(&bo, &bd, &br, err);
    if (rc == CVM_OK)
        rc = cvm_gammagamma_fit(&go, &gd, &gr, err);
    const double horizon = horizon_days / unit;
    const double rate_unit = pow(1 + yearly, unit / 365.25) - 1;
    const bool bg_ok = br.converged, gg_ok = gr.converged && gr.params.q > 1;
    if (rc == CVM_OK && bg_ok)
        cvm_bgnbd_score(&br.params, &bd, horizon, rate_unit, ctx->threads, pa, ex, det);
    if (rc == CVM_OK && gg_ok)
        cvm_gammagamma_score(&gr.params, &gd, ctx->threads, ev);
    if (rc == CVM_OK && !bg_ok)
        cvm_log_msg(ctx->log, CVM_LOG_WARN,
                    "cycles: BG/NBD fit did not converge (%s): p_alive, expected_purchases and "
                    "clv left empty", br.status ? br.status : "?");
    if (rc == CVM_OK && !gg_ok)
        cvm_log_msg(ctx->log, CVM_LOG_WARN,
                    "cycles: Gamma-Gamma fit not usable (%s%s): expected_avg_value and clv left "
                    "empty", gr.status ? gr.status : "?",
                    gr.converged && !(gr.params.q > 1) ? ", q <= 1" : "");

    /* Columns. */
    const cvm_column *mr = margin_column ? cvm_custtab_find(ct, "margin_rate") : NULL;
    size_t n_cycle = 0, n_overdue = 0, n_risk[3] = {0, 0, 0};
    double clv_total = 0, ex_total = 0;
    for (size_t i = 0; i < n && rc == CVM_OK; i++) {
        const cvm_cycle *c = &cyc[i];
        if (c->has_cycle) {
            n_cycle++;
            C.median[i] = c->median;
            C.after[i] = c->threshold;
            C.next[i] = c->next_day;
            C.late[i] = c->days_overdue;
            C.overdue[i] = c->days_overdue > 0;
            n_overdue += c->days_overdue > 0;
            int32_t by = c->next_day - lead;
            C.contact[i] = by > as_of ? by : as_of;
        }
    }
    for (size_t j = 0; j < s.n && rc == CVM_OK; j++) {
        size_t i = s.idx[j];
        if (bg_ok) {
            C.pa[i] = pa[j];
            C.ex[i] = ex[j];
            ex_total += ex[j];
        }
        if (gg_ok)
            C.ev[i] = ev[j];
        if (bg_ok && gg_ok && isfinite(ev[j])) {
            double mg = margin_fixed;
            double v = mr ? cvm_column_number(mr, i) : NAN;
            if (isfinite(v))
                mg = v < -1 ? -1 : (v > 1 ? 1 : v);
            C.clv[i] = mg * ev[j] * det[j];
            clv_total += C.clv[i];
        }
    }
    for (size_t i = 0; i < n && rc == CVM_OK; i++) {
        const cvm_cycle *c = &cyc[i];
        double p = C.pa[i];
        const char *risk = NULL;
        if (isfinite(p) && p < churn)
            risk = "high";
        else if (c->has_cycle && c->days_overdue > 0)
            risk = "medium";
        else if (isfinite(p) || c->has_cycle)
            risk = "low";
        if (risk) {
            n_risk[risk[0] == 'h' ? 0 : risk[0] == 'm' ? 1 : 2]++;
            if ((C.risk[i] = cvm_strdup(risk)) == NULL)
                rc = CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
        }
        if (c->last_day == CVM_DATE_NONE || rc != CVM_OK)
            continue;
        char buf[320], d1[11];
        int k = 0, ago = as_of - c->last_day;
        if (c->has_cycle) {
            long every = lround(c->median);
            if (c->days_overdue > 0)
                k = snprintf(buf, sizeof buf, "call now: %d day%s overdue; usually orders every "
                             "%ld days, last order %d days ago", c->days_overdue,
                             c->days_overdue == 1 ? "" : "s", every, ago);
            else {
                cvm_date_format(C.contact[i], d1);
                k = snprintf(buf, sizeof buf, "call before %s: usually orders every %ld days, "
                             "last order %d day%s ago", d1, every, ago, ago == 1 ? "" : "s");
            }
        } else {
            k = snprintf(buf, sizeof buf, "%d purchase day%s, last order %d day%s ago", c->n_days,
                         c->n_days == 1 ? "" : "s", ago, ago == 1 ? "" : "s");
        }
        if (isfinite(p) && k > 0 && (size_t)k < sizeof buf)
            snprintf(buf + k, sizeof buf - (size_t)k, "; P(alive) %.2f%s", p,
                     p < churn ? ", churn risk high" : "");
        if ((C.reason[i] = cvm_strdup(buf)) == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
    }

    /* cycles.csv */
    size_t np = 0;
    bool have_products = t->products != NULL;
    if (rc == CVM_OK && cvm_config_bool(cfg, "cycles.products")) {
        cvm_cycle_pair *pr = NULL;
        rc = cvm_cycles_products(&cp, t, &pr, &np, err);
        if (rc == CVM_OK)
            rc = write_pairs(ctx, pr, np, err);
        cvm_free(pr);
    }

    /* summary.json */
    json_t *M = ctx->models_json;
    if (rc == CVM_OK) {
        json_t *cj = json_object(), *rj = json_object();
        json_object_set_new(cj, "customers_with_cycle", json_integer((json_int_t)n_cycle));
        json_object_set_new(cj, "overdue", json_integer((json_int_t)n_overdue));
        json_object_set_new(cj, "overdue_rule", json_string(cvm_config_str(cfg, "cycles.overdue_rule")));
        json_object_set_new(cj, "overdue_param", json_real(cp.rule_param));
        json_object_set_new(cj, "min_intervals", json_integer(cp.min_intervals));
        json_object_set_new(cj, "product_pairs", cvm_config_bool(cfg, "cycles.products") && have_products
                                                     ? json_integer((json_int_t)np) : json_null());
        json_object_set_new(rj, "high", json_integer((json_int_t)n_risk[0]));
        json_object_set_new(rj, "medium", json_integer((json_int_t)n_risk[1]));
        json_object_set_new(rj, "low", json_integer((json_int_t)n_risk[2]));
        json_object_set_new(cj, "churn_risk", rj);
        json_object_set_new(cj, "churn_threshold", json_real(churn));
        json_object_set_new(M, "cycles", cj);

        json_t *bj = bgnbd_json(&br);
        json_object_set_new(bj, "time_unit", json_string(weeks ? "weeks" : "days"));
        json_object_set_new(bj, "horizon_days", json_real(horizon_days));
        json_object_set_new(bj, "expected_purchases_total", bg_ok ? json_real(ex_total) : json_null());
        if (cut != CVM_DATE_NONE) {
            json_t *hj = json_object();
            rc = holdout_report(ctx, &bo, cut, unit, hj, err);
            json_object_set_new(bj, "holdout", hj);
        }
        json_object_set_new(M, "bgnbd", bj);

        json_t *gj = json_object(), *gse = json_object();
        json_object_set_new(gj, "p", jnum(gr.params.p));
        json_object_set_new(gj, "q", jnum(gr.params.q));
        json_object_set_new(gj, "v", jnum(gr.params.v));
        json_object_set_new(gj, "loglik", jnum(gr.loglik));
        json_object_set_new(gj, "iterations", json_integer(gr.iterations));
        json_object_set_new(gj, "converged", json_boolean(gr.converged));
        json_object_set_new(gj, "status", json_string(gr.status ? gr.status : "not_run"));
        json_object_set_new(gse, "p", jnum(gr.se[0]));
        json_object_set_new(gse, "q", jnum(gr.se[1]));
        json_object_set_new(gse, "v", jnum(gr.se[2]));
        json_object_set_new(gj, "std_errors", gse);
        json_object_set_new(gj, "customers", json_integer((json_int_t)gr.n_used));
        json_object_set_new(gj, "population_mean_value",
                            gg_ok ? jnum(cvm_gammagamma_expected_value(&gr.params, 0, 0)) : json_null());
        json_object_set_new(gj, "clv_total", bg_ok && gg_ok ? json_real(clv_total) : json_null());
        json_object_set_new(gj, "discount_rate", json_real(yearly));
        json_object_set_new(gj, "margin", json_string(margin_column ? "column" : "fixed"));
        json_object_set_new(M, "gamma_gamma", gj);
    }
    cvm_free(cyc);
    sample_clear(&s);
    cvm_free(pa);
    cvm_free(ex);
    cvm_free(det);
    cvm_free(ev);
    return rc;
}

const cvm_stage cvm_stage_cycles = {"cycles", schema, sizeof schema / sizeof schema[0], check, run};
