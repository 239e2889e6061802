/*
 * gen.h - synthetic pharmaceutical sales data with a known truth, for the
 * sample data, the tests and the benchmarks (`cvm gen`).
 *
 *     cvm_gen_params p;
 *     cvm_gen_params_default(&p);
 *     p.customers = 2000; p.seed = 7; p.out_dir = "sample_data";
 *     if (cvm_gen_run(&p, &stats, &err) != CVM_OK) ...
 *
 * Files written into out_dir (created if missing; existing files replaced
 * atomically: written as NAME.tmp then renamed):
 *   transactions.csv  order_id,line,customer_id,date,product_id,quantity,unit_price,unit_cost
 *   customers.csv     customer_id,name,type,region,satisfaction,complaints,influence
 *   products.csv      product_id,name,category,unit_cost
 *   interactions.csv  customer_id,date,kind,cost
 *   truth_customers.csv  customer_id,type,segment,cycle_days,churned
 *   truth_bundles.csv    bundle_id,products,support,lift
 *   truth_cycles.csv     customer_id,product_id,cycle_days
 *   truth_bad_rows.csv   line,reason           (1-based physical line in transactions.csv)
 * The output is a pure function of the parameters (same bytes for any thread
 * count).
 *
 * Notes on the truth: truth_customers.csv lists the customers that bought
 * (about 2% of customers.csv are prospects without transactions and have no
 * behavioural truth); products.csv ends with the three non-product codes
 * POSTAGE, FEE-HANDLING and ADJ (category "Non-product", unit_cost 0.00);
 * bundle support and lift are computed exactly over the SO orders (baskets of
 * distinct P-codes), so an exact miner finds the same figures.
 */
#ifndef CVM_GEN_H
#define CVM_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct cvm_gen_params {
    size_t customers;      /* number of customers (default 2000, 1-999999) */
    size_t target_lines;   /* 0: as many lines as the customers' behaviour gives;
                              >0: scale the history so transactions.csv has
                              this many lines (±1%) by scaling the order
                              rates; at least `customers` */
    uint64_t seed;         /* default 1 */
    const char *out_dir;   /* required */
    const char *start;     /* first day of history, "2023-01-01" */
    int days;              /* history length in days (default 730, 90-36500) */
    double bad_row_share;  /* share of deliberately bad rows (default 0.002, <= 0.5) */
    double return_share;   /* share of orders later partly returned (default 0.02, <= 0.5) */
    int threads;           /* 0 = OpenMP default */
} cvm_gen_params;

typedef struct cvm_gen_stats {
    size_t lines;          /* data lines written to transactions.csv (no header) */
    size_t orders;         /* SO and RT orders */
    size_t bad_rows;
    size_t bytes;          /* size of transactions.csv */
    size_t returns;        /* RT orders among orders */
    double scale;          /* order-rate factor used (1 unless target_lines) */
} cvm_gen_stats;

void cvm_gen_params_default(cvm_gen_params *p);
/** @brief NULL when p is usable, else a readable reason. */
const char *cvm_gen_params_check(const cvm_gen_params *p);
int cvm_gen_run(const cvm_gen_params *p, cvm_gen_stats *stats, cvm_err *err);

#endif /* CVM_GEN_H */
