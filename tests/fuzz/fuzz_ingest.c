/*
 * fuzz_ingest.c - libFuzzer target for transaction ingest.
 *
 * The first byte picks options (delimiter, header, date format, cleaning);
 * the rest is the file. Every input is ingested twice: in one libcsv-only
 * chunk, and in 4 KiB chunks with the quote-free fast path. Both must succeed
 * or fail alike and give identical tables and rejects: the fuzzer hunts for
 * crashes and for any difference between the parallel path and a serial
 * parse. tests/test_fuzz_replay.c includes this file to replay the corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"

static int same_table(const cvm_txn_table *a, const cvm_txn_table *b)
{
    if (a->n_rows != b->n_rows || a->n_customers != b->n_customers)
        return 0;
    for (size_t i = 0; i < a->n_rows; i++) {
        if (a->customer[i] != b->customer[i] || a->order[i] != b->order[i] ||
            a->day[i] != b->day[i] || a->product[i] != b->product[i] ||
            a->flags[i] != b->flags[i] || a->line[i] != b->line[i])
            return 0;
        if (memcmp(&a->revenue[i], &b->revenue[i], sizeof(double)) != 0 ||
            memcmp(&a->quantity[i], &b->quantity[i], sizeof(double)) != 0)
            return 0;
    }
    for (size_t c = 0; c < a->n_customers; c++)
        if (strcmp(cvm_dict_str(a->customers, (int32_t)c), cvm_dict_str(b->customers, (int32_t)c)) != 0)
            return 0;
    return 1;
}

static int same_rejects(const cvm_rejects *a, const cvm_rejects *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->items[i].line != b->items[i].line || a->items[i].reason != b->items[i].reason ||
            a->items[i].column != b->items[i].column || strcmp(a->items[i].raw, b->items[i].raw) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof path, "/tmp/cvm-fuzz-ingest-%d.csv", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    uint8_t o = data[0];
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = path;
    sp.delimiter = (o & 1) ? ';' : ',';
    sp.date_format = (o & 2) ? "%m/%d/%Y %H:%M" : "auto";
    sp.return_prefix = (o & 4) ? "R" : "";
    sp.drop_duplicates = (o & 8) != 0;
    static const char *const ex[] = {"POSTAGE", "P1"};
    sp.exclude_products = ex;
    sp.n_exclude = (o & 16) ? 2 : 0;
    if (o & 32) {
        sp.header = false;
        sp.col_customer = "1";
        sp.col_order = "2";
        sp.col_date = "3";
        sp.col_product = "";
        sp.col_quantity = "4";
        sp.col_unit_price = "5";
        sp.col_unit_cost = "";
    }
    sp.threads = 1;

    cvm_txn_table a, b;
    cvm_rejects ra = {0}, rb = {0};
    cvm_ingest_stats sa, sb;
    cvm_err ea = {0}, eb = {0};
    sp.chunk_bytes = (size_t)1 << 30;
    sp.libcsv_only = true;
    int rca = cvm_ingest_transactions(&sp, NULL, &a, &ra, &sa, &ea);
    sp.chunk_bytes = 4096;
    sp.libcsv_only = false;
    sp.threads = (o & 64) ? 2 : 1;
    int rcb = cvm_ingest_transactions(&sp, NULL, &b, &rb, &sb, &eb);
    if (rca != rcb) {
        fprintf(stderr, "status differs: %d (%s) vs %d (%s)\n", rca, ea.msg, rcb, eb.msg);
        abort();
    }
    if (rca == CVM_OK) {
        if (!same_table(&a, &b) || !same_rejects(&ra, &rb)) {
            fprintf(stderr, "single libcsv chunk and 4 KiB fast-path chunks differ\n");
            abort();
        }
        cvm_txn_table_clear(&a);
        cvm_txn_table_clear(&b);
    }
    cvm_rejects_clear(&ra);
    cvm_rejects_clear(&rb);
    return 0;
}
