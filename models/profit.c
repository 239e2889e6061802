#include "profit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "keysort.h"

void cvm_profit_params_default(cvm_profit_params *p)
{
    memset(p, 0, sizeof *p);
    p->pareto_share = 0.8;
}

const char *cvm_profit_params_check(const cvm_profit_params *p)
{
    if (!(p->pareto_share > 0 && p->pareto_share <= 1))
        return "value.pareto_share must be within (0, 1]";
    if (p->per_order < 0 || p->per_line < 0 || p->per_return_line < 0 || p->type_default < 0)
        return "costs must not be negative";
    for (size_t i = 0; i < p->n_types; i++)
        if (p->type_costs[i] < 0)
            return "cost.per_type values must not be negative";
    return NULL;
}

int cvm_profit_run(const cvm_profit_params *p, cvm_custtab *ct, cvm_profit_result *res,
                   cvm_err *err)
{
    const char *why = cvm_profit_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "profit: %s", why);
    memset(res, 0, sizeof *res);
    const cvm_column *cf = cvm_custtab_find(ct, "frequency");
    const cvm_column *cl = cvm_custtab_find(ct, "lines");
    const cvm_column *crl = cvm_custtab_find(ct, "return_lines");
    const cvm_column *cg = cvm_custtab_find(ct, "gross_margin");
    const cvm_column *ctype = cvm_custtab_find(ct, "customer_type");
    const cvm_column *cint = cvm_custtab_find(ct, "interaction_cost");
    if (!cf || !cl || !crl || !cg)
        return CVM_FAIL(err, CVM_EINVAL, "profit: needs the purchase columns");
    size_t n = ct->n_rows;
    double *cts = cvm_custtab_add_double(ct, "cost_to_serve", "currency",
        "cost.per_order x frequency + cost.per_line x lines + cost.per_return_line x return_lines + cost.per_type[customer_type] + interaction_cost.", 2, err);
    if (!cts) return err->status;
    double *profit = cvm_custtab_add_double(ct, "profit", "currency",
        "Profit contribution: gross_margin - cost_to_serve.", 2, err);
    if (!profit) return err->status;
    double *share = cvm_custtab_add_double(ct, "profit_share", "share",
        "profit / total profit of all customers.", 6, err);
    if (!share) return err->status;
    int64_t *rank = cvm_custtab_add_int(ct, "pareto_rank", "rank",
        "Position by profit, 1 = most profitable (ties by customer id).", err);
    if (!rank) return err->status;
    double *cum = cvm_custtab_add_double(ct, "cum_profit_share", "share",
        "Cumulative profit share of this customer and all ranked above it (the Pareto curve).", 6, err);
    if (!cum) return err->status;
    int64_t *top = cvm_custtab_add_int(ct, "pareto_top", "flag",
        "1 for the smallest set of customers that makes value.pareto_share (80%) of total profit.", err);
    if (!top) return err->status;

    for (size_t i = 0; i < n; i++) {
        double lines = cvm_column_number(cl, i);
        double c = p->per_order * cvm_column_number(cf, i) + p->per_line * lines +
                   p->per_return_line * cvm_column_number(crl, i);
        if (lines > 0) {
            /* Customers without lines (master only) carry no flat cost: they
             * are prospects, not accounts being served. */
            double tc = p->type_default;
            const char *ty = ctype ? ((char *const *)ctype->data)[i] : NULL;
            for (size_t t = 0; ty && t < p->n_types; t++)
                if (strcmp(ty, p->type_names[t]) == 0)
                    tc = p->type_costs[t];
            c += tc;
            res->active++;
        }
        if (cint) {
            double ic = cvm_column_number(cint, i);
            if (!isnan(ic))
                c += ic;
        }
        cts[i] = c;
        double gm = cvm_column_number(cg, i);
        profit[i] = (isnan(gm) ? 0 : gm) - c;
        res->total_profit += profit[i];
        res->total_margin += isnan(gm) ? 0 : gm;
        res->total_cost_to_serve += c;
        if (profit[i] < 0)
            res->negative_profit++;
    }
    cvm_vi *k = cvm_malloc((n ? n : 1) * sizeof *k);
    if (k == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "profit: out of memory");
    for (size_t i = 0; i < n; i++) {
        k[i].v = profit[i];
        k[i].i = i;
    }
    if (cvm_sort_vi(k, n, true) != CVM_OK) { /* profit descending, ties by customer */
        cvm_free(k);
        return CVM_FAIL(err, CVM_ENOMEM, "profit: out of memory");
    }
    double total = res->total_profit, run = 0;
    bool reached = !(total > 0);
    for (size_t r = 0; r < n; r++) {
        size_t i = k[r].i;
        run += profit[i];
        rank[i] = (int64_t)r + 1;
        share[i] = total != 0 ? profit[i] / total : NAN;
        cum[i] = total != 0 ? run / total : NAN;
        top[i] = reached ? 0 : 1;
        if (top[i])
            res->top_customers++;
        if (!reached && run >= p->pareto_share * total)
            reached = true;
    }
    cvm_free(k);
    res->top_customer_share = res->active ? (double)res->top_customers / (double)res->active : 0;
    return CVM_OK;
}
