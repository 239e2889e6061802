/* Models on hand-made customer tables with known answers: RFM scoring
 * (pandas qcut semantics, ties, breaks), profit and Pareto, grades and the
 * satisfaction x volume grid, the action rule table. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "alloc.h"
#include "grading.h"
#include "profit.h"
#include "rfm.h"
#include "table.h"

/* A table with the purchase columns the models read. */
static cvm_custtab *table(size_t n, const double *rec, const double *freq, const double *mon)
{
    cvm_err err = {0};
    cvm_custtab *t = cvm_custtab_new(n);
    assert_non_null(t);
    int64_t *r = cvm_custtab_add_int(t, "recency_days", "days", "", &err);
    int64_t *f = cvm_custtab_add_int(t, "frequency", "orders", "", &err);
    double *m = cvm_custtab_add_double(t, "monetary", "currency", "", 2, &err);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        r[i] = isnan(rec[i]) ? CVM_INT_NONE : (int64_t)rec[i];
        f[i] = (int64_t)freq[i];
        m[i] = mon[i];
    }
    return t;
}

static int64_t ival(const cvm_custtab *t, const char *col, size_t i)
{
    const cvm_column *c = cvm_custtab_find(t, col);
    assert_non_null(c);
    return ((const int64_t *)c->data)[i];
}

static const char *sval(const cvm_custtab *t, const char *col, size_t i)
{
    const cvm_column *c = cvm_custtab_find(t, col);
    assert_non_null(c);
    const char *s = ((char *const *)c->data)[i];
    return s ? s : "";
}

static double dval(const cvm_custtab *t, const char *col, size_t i)
{
    const cvm_column *c = cvm_custtab_find(t, col);
    assert_non_null(c);
    return cvm_column_number(c, i);
}

/* qcut bins of ranks 1..n for 5 bins equal the exact rational rule
 * bin = ceil((k-1)*5/(n-1)) (min 1) for every n up to 500. */
static void test_qcut_exact_rule(void **state)
{
    (void)state;
    for (size_t n = 2; n <= 500; n++)
        for (size_t k = 1; k <= n; k++) {
            size_t exact = ((k - 1) * 5 + (n - 2)) / (n - 1);
            if (exact < 1)
                exact = 1;
            int got = cvm_rfm_qcut_bin(k, n, 5);
            if ((size_t)got != exact)
                fail_msg("n=%zu k=%zu: %d != %zu", n, k, got, exact);
        }
    /* Published reference: pandas.qcut(range(1, 11), 4, labels=False) + 1 is
     * 1 1 1 2 2 3 3 4 4 4 (edges 1, 3.25, 5.5, 7.75, 10). */
    static const int ref4[10] = {1, 1, 1, 2, 2, 3, 3, 4, 4, 4};
    for (size_t k = 1; k <= 10; k++)
        assert_int_equal(cvm_rfm_qcut_bin(k, 10, 4), ref4[k - 1]);
    /* pandas.qcut(range(1, 8), 3) -> edges 1, 3, 5, 7: 1 1 1 2 2 3 3. */
    static const int ref3[7] = {1, 1, 1, 2, 2, 3, 3};
    for (size_t k = 1; k <= 7; k++)
        assert_int_equal(cvm_rfm_qcut_bin(k, 7, 3), ref3[k - 1]);
}

static void test_rfm_scores_ties_and_reversal(void **state)
{
    (void)state;
    /* 10 buyers + 1 without purchases (NAN recency, not scored). Equal
     * values are ranked by row (= customer id order). */
    double rec[11] = {1, 1, 1, 5, 5, 9, 20, 30, 40, 50, NAN};
    double fr[11] = {10, 1, 1, 1, 2, 2, 3, 3, 9, 9, 0};
    double mo[11] = {5, 4, 3, 2, 1, 10, 20, 30, 40, 50, 0};
    cvm_custtab *t = table(11, rec, fr, mo);
    cvm_rfm_params p;
    cvm_rfm_params_default(&p);
    p.bins = 4;
    cvm_rfm_result res;
    cvm_err err = {0};
    assert_int_equal(cvm_rfm_run(&p, t, &res, &err), CVM_OK);
    assert_int_equal(res.scored, 10);
    /* Recency ranks are 1..10 in row order; bins 1 1 1 2 2 3 3 4 4 4, reversed. */
    static const int r_exp[10] = {4, 4, 4, 3, 3, 2, 2, 1, 1, 1};
    /* Frequency: values 10,1,1,1,2,2,3,3,9,9 -> ranks 10,1,2,3,4,5,6,7,8,9. */
    static const int f_exp[10] = {4, 1, 1, 1, 2, 2, 3, 3, 4, 4};
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(ival(t, "r_score", i), r_exp[i]);
        assert_int_equal(ival(t, "f_score", i), f_exp[i]);
    }
    assert_int_equal(ival(t, "r_score", 10), CVM_INT_NONE);
    assert_string_equal(sval(t, "rfm_cell", 10), "");
    /* Cut-offs: the largest recency in raw bins 1..3 is 1, 5, 20. */
    assert_close(res.cutoffs[0][0], 1, 0, 0, "recency cut-off 1");
    assert_close(res.cutoffs[0][1], 5, 0, 0, "recency cut-off 2");
    assert_close(res.cutoffs[0][2], 20, 0, 0, "recency cut-off 3");
    cvm_custtab_free(t);

    /* Breaks (and so frozen cut-offs) reproduce those scores on the same data
     * where no tie straddles a boundary. */
    t = table(11, rec, fr, mo);
    cvm_rfm_params_default(&p);
    p.bins = 4;
    p.use_breaks = true;
    double rb[3] = {1, 5, 20}, fb[3] = {1, 2, 3}, mb[3] = {3, 10, 30};
    memcpy(p.breaks[0], rb, sizeof rb);
    memcpy(p.breaks[1], fb, sizeof fb);
    memcpy(p.breaks[2], mb, sizeof mb);
    assert_int_equal(cvm_rfm_run(&p, t, &res, &err), CVM_OK);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(ival(t, "r_score", i), r_exp[i]);
    assert_int_equal(ival(t, "m_score", 0), 2);  /* 5 in (3, 10] */
    assert_int_equal(ival(t, "m_score", 9), 4);  /* 50 > 30 */
    assert_int_equal(ival(t, "f_score", 0), 4);  /* 10 > 3 */
    cvm_custtab_free(t);

    /* Parameter checks. */
    p.bins = 11;
    assert_non_null(cvm_rfm_params_check(&p));
    p.bins = 4;
    p.breaks[0][1] = 0.5;
    assert_non_null(cvm_rfm_params_check(&p));
    p.breaks[0][1] = p.breaks[0][0]; /* equal points: allowed (frozen ties) */
    assert_null(cvm_rfm_params_check(&p));
}

static void test_rfm_segments(void **state)
{
    (void)state;
    /* 5 buyers with distinct values: with 5 bins each gets one score. */
    double rec[5] = {1, 2, 3, 4, 5}, fr[5] = {5, 4, 3, 2, 1}, mo[5] = {50, 40, 30, 20, 10};
    cvm_custtab *t = table(5, rec, fr, mo);
    cvm_rfm_params p;
    cvm_rfm_params_default(&p);
    cvm_rfm_result res;
    cvm_err err = {0};
    assert_int_equal(cvm_rfm_run(&p, t, &res, &err), CVM_OK);
    assert_string_equal(sval(t, "rfm_cell", 0), "555");
    assert_string_equal(sval(t, "rfm_segment", 0), "Champions");
    assert_string_equal(sval(t, "rfm_cell", 4), "111");
    assert_string_equal(sval(t, "rfm_segment", 4), "Lost");
    cvm_custtab_free(t);
    /* A custom map; unmatched cells are Other. */
    t = table(5, rec, fr, mo);
    cvm_rfm_segment_rule rules[1] = {{"Top", 5, 5, 1, 5, 1, 5}};
    p.segments = rules;
    p.n_segments = 1;
    assert_int_equal(cvm_rfm_run(&p, t, &res, &err), CVM_OK);
    assert_string_equal(sval(t, "rfm_segment", 0), "Top");
    assert_string_equal(sval(t, "rfm_segment", 1), "Other");
    assert_int_equal(res.segment_counts[0], 1);
    assert_int_equal(res.segment_counts[1], 4);
    cvm_custtab_free(t);
}

static void test_profit_and_pareto(void **state)
{
    (void)state;
    cvm_err err = {0};
    cvm_custtab *t = cvm_custtab_new(4);
    int64_t *f = cvm_custtab_add_int(t, "frequency", "", "", &err);
    int64_t *l = cvm_custtab_add_int(t, "lines", "", "", &err);
    int64_t *rl = cvm_custtab_add_int(t, "return_lines", "", "", &err);
    double *gm = cvm_custtab_add_double(t, "gross_margin", "", "", 2, &err);
    char **ty = cvm_custtab_add_str(t, "customer_type", "", &err);
    double *ic = cvm_custtab_add_double(t, "interaction_cost", "", "", 2, &err);
    assert_non_null(ic);
    int64_t F[4] = {10, 2, 1, 0}, L[4] = {30, 4, 1, 0}, RL[4] = {1, 0, 0, 0};
    double G[4] = {1000, 100, 10, 0}, I[4] = {50, 0, 0, 0};
    const char *T[4] = {"hospital", "doctor", NULL, "doctor"};
    for (int i = 0; i < 4; i++) {
        f[i] = F[i];
        l[i] = L[i];
        rl[i] = RL[i];
        gm[i] = G[i];
        ic[i] = I[i];
        ty[i] = T[i] ? cvm_strdup(T[i]) : NULL;
    }
    cvm_profit_params p;
    cvm_profit_params_default(&p);
    p.per_order = 5;
    p.per_line = 1;
    p.per_return_line = 10;
    const char *names[2] = {"hospital", "doctor"};
    double costs[2] = {100, 20};
    p.type_names = names;
    p.type_costs = costs;
    p.n_types = 2;
    p.type_default = 7;
    cvm_profit_result res;
    assert_int_equal(cvm_profit_run(&p, t, &res, &err), CVM_OK);
    /* 0: 50 + 30 + 10 + 100 + 50 = 240; 1: 10 + 4 + 20 = 34; 2: 5 + 1 + 7 = 13;
     * 3: no lines, no flat cost: 0. */
    assert_close(dval(t, "cost_to_serve", 0), 240, 0, 1e-9, "cts 0");
    assert_close(dval(t, "cost_to_serve", 1), 34, 0, 1e-9, "cts 1");
    assert_close(dval(t, "cost_to_serve", 2), 13, 0, 1e-9, "cts 2");
    assert_close(dval(t, "cost_to_serve", 3), 0, 0, 1e-9, "cts 3");
    assert_close(dval(t, "profit", 0), 760, 0, 1e-9, "profit 0");
    assert_close(dval(t, "profit", 2), -3, 0, 1e-9, "profit 2");
    assert_close(res.total_profit, 760 + 66 - 3, 0, 1e-9, "total");
    /* 760 alone is 760/823 = 92% >= 80%: the top set is customer 0 alone. */
    assert_int_equal(ival(t, "pareto_top", 0), 1);
    assert_int_equal(ival(t, "pareto_top", 1), 0);
    assert_int_equal(res.top_customers, 1);
    assert_int_equal(ival(t, "pareto_rank", 0), 1);
    assert_int_equal(ival(t, "pareto_rank", 2), 4);
    assert_int_equal(ival(t, "pareto_rank", 3), 3); /* 0 > -3 */
    assert_int_equal(res.negative_profit, 1);
    assert_close(dval(t, "cum_profit_share", 2), 1.0, 1e-12, 0, "curve ends at 1");
    cvm_custtab_free(t);
}

static cvm_custtab *grading_table(void)
{
    cvm_err err = {0};
    cvm_custtab *t = cvm_custtab_new(6);
    double *rev = cvm_custtab_add_double(t, "revenue_recent", "", "", 2, &err);
    int64_t *f = cvm_custtab_add_int(t, "frequency", "", "", &err);
    double *inf = cvm_custtab_add_double(t, "influence", "", "", 2, &err);
    double *sat = cvm_custtab_add_double(t, "satisfaction", "", "", 1, &err);
    double *comp = cvm_custtab_add_double(t, "complaints", "", "", 0, &err);
    assert_non_null(comp);
    /* Revenue percentiles among the 5 buyers: 0, .25, .5, .75, 1. */
    double R[6] = {100, 200, 300, 400, 5000, 0};
    double IN[6] = {90, 10, 50, 20, 30, NAN};
    double S[6] = {4.5, 3.5, 2.0, NAN, 2.1, 3};
    for (int i = 0; i < 6; i++) {
        rev[i] = R[i];
        f[i] = i < 5 ? 3 : 0;
        inf[i] = IN[i];
        sat[i] = S[i];
        comp[i] = i == 4 ? 4 : 0;
    }
    return t;
}

static void test_grading_and_grid(void **state)
{
    (void)state;
    cvm_custtab *t = grading_table();
    cvm_grading_params p;
    cvm_grading_params_default(&p);
    p.one_vote_revenue = 1000;
    cvm_grading_result res;
    cvm_err err = {0};
    assert_int_equal(cvm_grading_run(&p, t, &res, &err), CVM_OK);
    /* 4: one vote. 0: value 0 (low) x influence 1 (high) -> matrix[low][high] = B.
     * 1: value .25 (low) x influence 0 (low) -> C. 2: .5 (mid) x .5 (mid) -> B.
     * 3: .75 (mid) x .25 (low) -> C. 5: no purchases -> D. */
    assert_string_equal(sval(t, "grade", 4), "A");
    assert_non_null(strstr(sval(t, "grade_reason", 4), "one vote"));
    assert_string_equal(sval(t, "grade", 0), "B");
    assert_string_equal(sval(t, "grade", 1), "C");
    assert_string_equal(sval(t, "grade", 2), "B");
    assert_string_equal(sval(t, "grade", 3), "C");
    assert_string_equal(sval(t, "grade", 5), "D");
    assert_int_equal(res.one_vote, 1);
    /* Grid: volume by revenue percentile (.8 large, .5 medium). */
    assert_string_equal(sval(t, "volume_tier", 4), "large");
    assert_string_equal(sval(t, "grid_class", 4), "G"); /* large, satisfaction 2.1 */
    assert_string_equal(sval(t, "strategy_volume", 4), "one_to_one");
    assert_string_equal(sval(t, "strategy_satisfaction", 4), "correct");
    assert_string_equal(sval(t, "grid_class", 0), "C"); /* small, 4.5 high */
    assert_string_equal(sval(t, "grid_class", 2), "H"); /* medium (.5), 2.0 low */
    assert_string_equal(sval(t, "grid_class", 1), "F"); /* small, 3.5 medium */
    assert_string_equal(sval(t, "grid_class", 3), "");  /* satisfaction unknown */
    assert_string_equal(sval(t, "volume_tier", 3), "medium");
    assert_int_equal(res.class_counts[6], 1);
    assert_int_equal(res.no_satisfaction, 1);
    cvm_custtab_free(t);
    /* Bad parameters are refused before any work. */
    cvm_grading_params_default(&p);
    p.tier_mid = 0.9;
    assert_non_null(cvm_grading_params_check(&p));
}

static void test_actions(void **state)
{
    (void)state;
    cvm_custtab *t = grading_table();
    cvm_grading_params gp;
    cvm_grading_params_default(&gp);
    cvm_grading_result gr;
    cvm_err err = {0};
    assert_int_equal(cvm_grading_run(&gp, t, &gr, &err), CVM_OK);
    cvm_action_rule rules[] = {
        {"grid_class=G", "FIX", "fix it", 1, 0},
        {"grade=A|B & volume_tier!=small", "CARE", "care", 2, 0},
        {"cluster_label=x", "NEVER", "", 3, 0}, /* column absent: never matches */
        {"default", "NURTURE", "nurture", 5, 0},
    };
    cvm_actions_params p = {rules, 4, "test.yaml", 0};
    cvm_actions_result res;
    assert_int_equal(cvm_actions_run(&p, t, &res, &err), CVM_OK);
    assert_string_equal(sval(t, "action", 4), "FIX");
    const char *why = sval(t, "action_reason", 4);
    if (!strstr(why, "class G: large volume, satisfaction 2.1/5, 4 complaints"))
        fail_msg("reason: %s", why);
    assert_int_equal(ival(t, "action_priority", 4), 1);
    /* Customer 2: grade B, medium volume -> CARE; customer 0: grade B but small. */
    assert_string_equal(sval(t, "action", 2), "CARE");
    assert_string_equal(sval(t, "action", 0), "NURTURE");
    assert_int_equal(res.rule_hits[2], 0);
    assert_int_equal(res.rules_on_missing_columns, 1);
    assert_int_equal(res.unmatched, 0);
    cvm_actions_result_clear(&res);
    cvm_custtab_free(t);
    /* Malformed rules name the file, the line and the problem. */
    cvm_action_rule bad[] = {{"grade", "X", "", 1, 12}};
    cvm_actions_params bp = {bad, 1, "job.yaml", 0};
    char buf[256];
    const char *msg = cvm_actions_params_check(&bp, buf, sizeof buf);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "job.yaml:12"));
    cvm_action_rule noact[] = {{"grade=A", "", "", 1, 3}};
    cvm_actions_params np = {noact, 1, "job.yaml", 0};
    assert_non_null(cvm_actions_params_check(&np, buf, sizeof buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qcut_exact_rule),
        cmocka_unit_test(test_rfm_scores_ties_and_reversal),
        cmocka_unit_test(test_rfm_segments),
        cmocka_unit_test(test_profit_and_pareto),
        cmocka_unit_test(test_grading_and_grid),
        cmocka_unit_test(test_actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
