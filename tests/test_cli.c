/* The command line: exit codes, messages naming file:line and the key, and
 * the run contract (a failed run leaves earlier runs and `latest` alone). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = cvm_test_mkdtemp("cli");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(dir);
    free(dir);
    return 0;
}

/* Runs cvm with args (a shell fragment); returns the exit code and leaves
 * stderr in DIR/err, stdout in DIR/out. */
static int cvm(const char *args)
{
    return cvm_test_system("cd '%s' && '%s' %s > '%s/stdout.txt' 2> '%s/stderr.txt'", dir, cvm_test_binary(), args,
                           dir, dir);
}

static char *err_text(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/stderr.txt", dir);
    char *s = cvm_test_read_file(p, NULL);
    assert_non_null(s);
    return s;
}

static void expect_err(const char *needle)
{
    char *s = err_text();
    if (strstr(s, needle) == NULL)
        fail_msg("stderr lacks '%s':\n%s", needle, s);
    free(s);
}

static void write_in_dir(const char *name, const char *text)
{
    char *p = cvm_test_path(dir, name);
    cvm_test_write_file(p, text);
    free(p);
}

static const char *const txn =
    "order_id,customer_id,date,product_id,quantity,unit_price\n"
    "O1,C1,2024-01-05,P1,2,10.00\n"
    "O2,C2,2024-01-06,P1,1,10.00\n"
    "O3,C1,2024-02-01,P2,1,5.50\n";

static void test_usage(void **state)
{
    (void)state;
    assert_int_equal(cvm("--version"), 0);
    assert_int_equal(cvm("--help"), 0);
    assert_int_equal(cvm("run --help"), 0);
    assert_int_equal(cvm(""), 2);
    assert_int_equal(cvm("frobnicate"), 2);
    expect_err("unknown command 'frobnicate'");
    assert_int_equal(cvm("run"), 2);
    expect_err("a job file is required");
    assert_int_equal(cvm("run job.yaml --threads zero"), 2);
    expect_err("--threads must be");
    assert_int_equal(cvm("run job.yaml --bogus"), 2);
    expect_err("unknown option '--bogus'");
    assert_int_equal(cvm("run job.yaml --set"), 2);
    expect_err("--set needs a value");
}

static void test_config_errors_name_the_place(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("bad.yaml", "job:\n  name: x\ninput:\n  transactions:\n    path: t.csv\nrfm:\n  binz: 4\n");
    assert_int_equal(cvm("run bad.yaml"), 2);
    expect_err("bad.yaml:7:");
    expect_err("rfm.binz");
    expect_err("rfm.bins");
    write_in_dir("range.yaml", "input:\n  transactions:\n    path: t.csv\nrfm:\n  bins: 99\n");
    assert_int_equal(cvm("run range.yaml"), 2);
    expect_err("range.yaml:5:");
    expect_err("out of range");
    assert_int_equal(cvm("run missing.yaml"), 2);
    expect_err("missing.yaml");
    write_in_dir("ok.yaml", "input:\n  transactions:\n    path: t.csv\n");
    assert_int_equal(cvm("run ok.yaml --set rfm.bins=x"), 2);
    expect_err("rfm.bins");
    assert_int_equal(cvm("run ok.yaml --set rfm.method=breaks"), 2);
    expect_err("rfm.recency_breaks");
    assert_int_equal(cvm("run ok.yaml --set grading.matrix=ABC"), 2);
    expect_err("grading.matrix");
    write_in_dir("nopath.yaml", "job:\n  name: x\n");
    assert_int_equal(cvm("run nopath.yaml"), 2);
    expect_err("input.transactions.path must be set");
    write_in_dir("rules.yaml", "input:\n  transactions:\n    path: t.csv\nactions:\n  rules:\n"
                               "    - {when: \"grade\", action: X}\n");
    assert_int_equal(cvm("run rules.yaml"), 2);
    expect_err("rules.yaml:6");
    expect_err("column=value");
    /* Nothing was written for any of those. */
    struct stat sb;
    char *out = cvm_test_path(dir, "out");
    assert_int_not_equal(stat(out, &sb), 0); /* no output directory was even created */
    free(out);
}

static void test_data_errors(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("nofile.yaml", "input:\n  transactions:\n    path: nothere.csv\n");
    assert_int_equal(cvm("run nofile.yaml --out out"), 3);
    expect_err("nothere.csv");
    write_in_dir("nocol.yaml", "input:\n  transactions:\n    path: t.csv\n    columns:\n      customer: cust\n");
    assert_int_equal(cvm("run nocol.yaml --out out"), 3);
    expect_err("t.csv:1");
    expect_err("'cust'");
    /* A good run, then one with too many rejects: the first stays latest. */
    write_in_dir("ok.yaml", "job:\n  name: j\ninput:\n  transactions:\n    path: t.csv\n");
    assert_int_equal(cvm("run ok.yaml --out out"), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/out/latest", dir);
    char first[4200] = "";
    assert_true(readlink(p, first, sizeof first - 1) > 0);
    write_in_dir("t.csv", "order_id,customer_id,date,product_id,quantity,unit_price\n"
                          "O1,C1,2024-01-05,P1,2,10.00\n"
                          "O2,,2024-01-06,P1,1,10.00\n"
                          "O3,C1,2024-13-01,P2,1,5.50\n");
    assert_int_equal(cvm("run ok.yaml --out out"), 3);
    expect_err("above cleaning.max_reject_ratio");
    char now[4200] = "";
    assert_true(readlink(p, now, sizeof now - 1) > 0);
    assert_string_equal(first, now);
    /* The evidence is kept in failed-*: rejects.csv with line and reason. */
    assert_int_equal(cvm_test_system("ls -d '%s'/out/failed-j-* > /dev/null", dir), 0);
    assert_int_equal(cvm_test_system("grep -q '^.*t.csv,3,2,customer_id,missing_customer' '%s'/out/failed-j-*/rejects.csv", dir), 0);
    assert_int_equal(cvm_test_system("grep -q 't.csv,4,3,date,bad_date' '%s'/out/failed-j-*/rejects.csv", dir), 0);
    /* No temporary directory is left behind. */
    assert_int_not_equal(cvm_test_system("ls -d '%s'/out/.tmp-* 2>/dev/null | grep -q .", dir), 0);
    /* Allowed by a higher threshold. */
    assert_int_equal(cvm("run ok.yaml --out out --set cleaning.max_reject_ratio=0.9"), 0);
}

static void test_output_errors(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("ok.yaml", "input:\n  transactions:\n    path: t.csv\n");
    write_in_dir("afile", "not a directory\n");
    assert_int_equal(cvm("run ok.yaml --out afile/sub"), 4);
    expect_err("afile");
}

static void test_validate_and_config(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("ok.yaml", "job:\n  name: v\ninput:\n  transactions:\n    path: t.csv\n");
    assert_int_equal(cvm("validate ok.yaml --out out"), 0);
    assert_int_equal(cvm_test_system("ls '%s'/out/v-validate-*/rejects.csv > /dev/null", dir), 0);
    assert_int_equal(cvm_test_system("test ! -e '%s'/out/latest", dir), 0);
    assert_int_equal(cvm_test_system("test ! -e '%s'/out/v-validate-*/segments.csv", dir), 0);
    assert_int_equal(cvm("config ok.yaml --set rfm.bins=3"), 0);
    assert_int_equal(cvm_test_system("grep -q '  bins: 3' '%s/stdout.txt'", dir), 0);
    assert_int_equal(cvm_test_system("grep -q 'path: t.csv' '%s/stdout.txt'", dir), 0);
}

static void test_degrades_without_master_columns(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("c.csv", "customer_id,type\nC1,hospital\nC2,doctor\nC3,pharmacy\n");
    write_in_dir("m.yaml", "job: {name: m}\ninput:\n  transactions: {path: t.csv}\n"
                           "  customers: {path: c.csv}\n");
    assert_int_equal(cvm("run m.yaml --out out"), 0);
    char *p = cvm_test_path(dir, "out/latest/summary.json");
    char *s = cvm_test_read_file(p, NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "no 'satisfaction' column"));
    assert_non_null(strstr(s, "no satisfaction x volume class"));
    assert_non_null(strstr(s, "grades from value only"));
    free(s);
    free(p);
    /* The master-only customer C3 is in segments.csv, without purchases. */
    p = cvm_test_path(dir, "out/latest/segments.csv");
    s = cvm_test_read_file(p, NULL);
    assert_non_null(s);
    assert_non_null(strstr(s, "\nC3,pharmacy,"));
    assert_null(strstr(s, ",satisfaction,"));
    free(s);
    free(p);
}

static void test_frozen_cutoffs(void **state)
{
    (void)state;
    /* Night 1 scores with quantiles; night 2 freezes night 1's cut-offs. */
    char *big = cvm_test_path(dir, "t.csv");
    FILE *f = fopen(big, "w");
    assert_non_null(f);
    fputs("order_id,customer_id,date,product_id,quantity,unit_price\n", f);
    /* No ties: customer k has k orders, its own last day and spend. */
    for (int k = 1; k <= 40; k++)
        for (int j = 0; j < k; j++) {
            int d = (j * 3 + k * 5) % 330 + (j == k - 1 ? 0 : 0);
            d = j == k - 1 ? 100 + k * 5 : d % 100;
            fprintf(f, "O%d_%d,C%03d,2024-%02d-%02d,P1,1,%d.%02d\n", k, j, k, 1 + d / 28, 1 + d % 28, k, j);
        }
    fclose(f);
    free(big);
    write_in_dir("n.yaml", "job: {name: n}\ninput:\n  transactions: {path: t.csv}\n");
    assert_int_equal(cvm("run n.yaml --out out"), 0);
    char first[4200] = "";
    char *l = cvm_test_path(dir, "out/latest");
    assert_true(readlink(l, first, sizeof first - 1) > 0);
    char args[4400];
    snprintf(args, sizeof args, "run n.yaml --out out2 --set rfm.method=frozen --set rfm.freeze_from=out/%s", first);
    assert_int_equal(cvm(args), 0);
    /* Same cut-offs in both manifests, and the scores agree (no tie in this
     * data straddles a boundary in a way that changes them). */
    assert_int_equal(cvm_test_system("cd '%s' && python3 -c \"import json,sys; a=json.load(open('out/latest/summary.json'))['rfm']['cutoffs']; "
                                     "b=json.load(open('out2/latest/summary.json'))['rfm']['cutoffs']; sys.exit(0 if a==b else 1)\"", dir), 0);
    /* Frozen scores follow the cut-offs as right-closed breaks (a score is
     * 1 + the number of cut-offs below the value; recency reversed), and on
     * data without ties they equal the quantile scores of the first night. */
    static const char check[] =
        "import csv,json,sys\n"
        "cut=json.load(open('out2/latest/summary.json'))['rfm']['cutoffs']\n"
        "a={r['customer_id']:r for r in csv.DictReader(open('out/latest/segments.csv'))}\n"
        "b=list(csv.DictReader(open('out2/latest/segments.csv')))\n"
        "same=0\n"
        "for r in b:\n"
        "  for col,sc,rev in (('recency_days','r_score',1),('frequency','f_score',0),('monetary','m_score',0)):\n"
        "    s=1+sum(1 for c in cut[col.split('_')[0]] if float(r[col])>c)\n"
        "    if rev: s=6-s\n"
        "    if int(r[sc])!=s: sys.exit('%s %s: %s != %d'%(r['customer_id'],sc,r[sc],s))\n"
        "  same+=all(r[k]==a[r['customer_id']][k] for k in ('r_score','f_score','m_score'))\n"
        "sys.exit(0 if same==len(b) else 'only %d of %d keep their scores'%(same,len(b)))\n";
    char *py = cvm_test_path(dir, "check.py");
    cvm_test_write_file(py, check);
    assert_int_equal(cvm_test_system("cd '%s' && python3 check.py", dir), 0);
    free(py);
    /* A missing or incompatible source is a config error. */
    assert_int_equal(cvm("run n.yaml --out out3 --set rfm.method=frozen --set rfm.freeze_from=nowhere"), 2);
    expect_err("rfm.freeze_from");
    snprintf(args, sizeof args, "run n.yaml --out out3 --set rfm.method=frozen --set rfm.bins=4 --set rfm.freeze_from=out/%s", first);
    assert_int_equal(cvm(args), 2);
    expect_err("rfm.bins");
    free(l);
}

static void test_lock_and_retention(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("r.yaml", "job: {name: r}\ninput:\n  transactions: {path: t.csv}\noutput: {keep_runs: 2}\n");
    /* Another process holds the job's lock: exit 6 naming the holder. */
    assert_int_equal(cvm_test_system("cd '%s' && mkdir -p out && echo 'pid 4242, started x' > out/.lock-r && "
                                     "flock out/.lock-r -c \"'%s' run r.yaml --out out > so.txt 2> lk.txt\"; "
                                     "test $? -eq 6 && grep -q 'another run of job' lk.txt",
                                     dir, cvm_test_binary()), 0);
    /* A killed run left a temporary directory: the next run cleans it. */
    assert_int_equal(cvm_test_system("mkdir -p '%s'/out/.tmp-r-20200101T000000Z/x", dir), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cvm("run r.yaml --out out"), 0);
        sleep(1); /* distinct run ids */
    }
    assert_int_equal(cvm_test_system("test ! -e '%s'/out/.tmp-r-20200101T000000Z", dir), 0);
    /* keep_runs = 2: two run directories remain, and latest is one of them. */
    assert_int_equal(cvm_test_system("test $(ls -d '%s'/out/r-2* | wc -l) -eq 2", dir), 0);
    assert_int_equal(cvm_test_system("test -e '%s'/out/latest/segments.csv", dir), 0);
    /* The lock file was released: a run now succeeds. */
    assert_int_equal(cvm("run r.yaml --out out"), 0);
}

static int cache_status_is(const char *out, const char *status)
{
    return cvm_test_system("cd '%s' && grep -A3 '\"cache\"' %s/latest/summary.json | grep -q '\"status\": \"%s\"'",
                           dir, out, status);
}

static void test_parse_cache(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("c.yaml", "job: {name: c}\ninput:\n  transactions: {path: t.csv}\n  cache: true\n");
    assert_int_equal(cvm("run c.yaml --out o1"), 0);
    assert_int_equal(cache_status_is("o1", "miss"), 0);
    /* Same inputs and ingest settings, another model setting: a hit with
     * the same per-customer figures. */
    assert_int_equal(cvm("run c.yaml --out o1 --set rfm.bins=3 --set input.cache_dir=o1/.cache"), 0);
    assert_int_equal(cache_status_is("o1", "hit"), 0);
    assert_int_equal(cvm("run c.yaml --out o2 --set input.cache_dir=o1/.cache"), 0);
    assert_int_equal(cache_status_is("o2", "hit"), 0);
    assert_int_equal(cvm_test_system("cd '%s' && cmp -s o1/latest/rejects.csv o2/latest/rejects.csv && "
                                     "cut -d, -f1-20 o2/latest/segments.csv > a.txt && "
                                     "'%s' run c.yaml --out o3 --no-cache -q > /dev/null 2>&1 && "
                                     "cut -d, -f1-20 o3/latest/segments.csv > b.txt && cmp -s a.txt b.txt",
                                     dir, cvm_test_binary()), 0);
    assert_int_equal(cache_status_is("o3", "off"), 0);
    /* Every ingest setting and the input itself invalidate it. */
    assert_int_equal(cvm("run c.yaml --out o1 --set cleaning.return_order_prefix=R"), 0);
    assert_int_equal(cache_status_is("o1", "miss"), 0);
    assert_int_equal(cvm("run c.yaml --out o1"), 0);
    assert_int_equal(cache_status_is("o1", "miss"), 0); /* the prefix run replaced it */
    assert_int_equal(cvm_test_system("cd '%s' && sleep 1 && echo 'O9,C3,2024-03-01,P1,1,1.00' >> t.csv", dir), 0);
    assert_int_equal(cvm("run c.yaml --out o1"), 0);
    assert_int_equal(cache_status_is("o1", "miss"), 0);
    assert_int_equal(cvm_test_system("grep -q '^C3,' '%s'/o1/latest/segments.csv", dir), 0);
    /* A damaged cache is detected, reported and replaced. */
    assert_int_equal(cvm_test_system("cd '%s' && f=o1/.cache/c.cvmcache && "
                                     "dd if=/dev/zero of=$f bs=1 count=8 seek=60 conv=notrunc 2>/dev/null", dir), 0);
    assert_int_equal(cvm("run c.yaml --out o1"), 0);
    assert_int_equal(cache_status_is("o1", "corrupt"), 0);
    expect_err("corrupt");
    assert_int_equal(cvm("run c.yaml --out o1"), 0);
    assert_int_equal(cache_status_is("o1", "hit"), 0);
}

static void test_sweep(void **state)
{
    (void)state;
    write_in_dir("t.csv", txn);
    write_in_dir("s.yaml", "job: {name: s}\ninput:\n  transactions: {path: t.csv}\n");
    assert_int_equal(cvm("sweep s.yaml --out so --grid rfm.bins=2,3 --grid grading.tier_high=0.7,0.9"), 0);
    /* Four points, each with its values and the figures of its own run. */
    static const char check[] =
        "import csv,glob,json,sys\n"
        "d=glob.glob('so/s-sweep-*')[0]\n"
        "rows=list(csv.DictReader(open(d+'/sweep.csv')))\n"
        "assert len(rows)==4, rows\n"
        "assert [(r['rfm.bins'],r['grading.tier_high']) for r in rows]==[('2','0.7'),('2','0.9'),('3','0.7'),('3','0.9')]\n"
        "for i,r in enumerate(rows):\n"
        "  p=json.load(open('%s/points/%03d/summary.json'%(d,i+1)))\n"
        "  assert p['rfm']['bins']==int(r['rfm.bins']) and r['rfm.bins.1']==r['rfm.bins'] if 'rfm.bins.1' in r else p['rfm']['bins']==int(r['rfm.bins'])\n"
        "  assert float(r['profit.total_profit'])==p['profit']['total_profit']\n"
        "  assert p['config']['grading']['tier_high']==float(r['grading.tier_high'])\n"
        "s=json.load(open(d+'/summary.json'))\n"
        "assert s['mode']=='sweep' and len(s['sweep']['points'])==4\n";
    char *py = cvm_test_path(dir, "sweep_check.py");
    cvm_test_write_file(py, check);
    assert_int_equal(cvm_test_system("cd '%s' && python3 sweep_check.py", dir), 0);
    free(py);
    assert_int_equal(cvm_test_system("test ! -e '%s'/so/latest", dir), 0);
    /* Only model settings can be swept: the parse is shared. */
    assert_int_equal(cvm("sweep s.yaml --out so --grid cleaning.max_reject_ratio=0.1,0.2"), 2);
    expect_err("changes the ingest");
    assert_int_equal(cvm("sweep s.yaml --out so"), 2);
    expect_err("--grid");
    assert_int_equal(cvm("sweep s.yaml --out so --grid rfm.bins=3,99"), 2);
    expect_err("rfm.bins");
}

static void test_docs_are_current(void **state)
{
    (void)state;
    /* docs/config.md and jobs/template.yaml are generated from the schema. */
    assert_int_equal(cvm_test_system("'%s' config - --markdown > '%s/md' && tail -n +5 '%s/docs/config.md' | diff -q - '%s/md'",
                                     cvm_test_binary(), dir, cvm_test_source_dir(), dir), 0);
    assert_int_equal(cvm_test_system("'%s' config - --docs > '%s/tpl' && tail -n +3 '%s/jobs/template.yaml' | diff -q - '%s/tpl'",
                                     cvm_test_binary(), dir, cvm_test_source_dir(), dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors_name_the_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_and_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_degrades_without_master_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_cutoffs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_are_current, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
