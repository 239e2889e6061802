/*
 * main.c - the cvm command line. The only place that prints for the user
 * and exits; everything else returns statuses (job.h maps them to exit codes).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "config.h"
#include "diff.h"
#include "rules_cli.h"
#include "error.h"
#include "gen_cli.h"
#include "job.h"
#include "log.h"
#include "schema.h"

static const char *const usage_main =
    "cvm " CVM_VERSION " - customer value mining: RFM, profit contribution, grades, actions\n"
    "\n"
    "Usage:\n"
    "  cvm run JOB [--set section.key=value]... [--threads N] [--out DIR] [--as-of YYYY-MM-DD]\n"
    "              [--quiet] [--log-format text|json]\n"
    "  cvm validate JOB [--set ...]    check config and inputs, write the rejects report\n"
    "  cvm sweep JOB --grid KEY=V1,V2 [--grid ...]   one parse, a grid of model settings\n"
    "  cvm config JOB [--set ...]      print the effective config (--docs: with comments;\n"
    "                                  --markdown: the key reference; JOB may be -)\n"
    "  cvm diff OLD_RUN NEW_RUN [--out FILE] [--json]   what changed between two runs\n"
    "  cvm rules --baskets FILE [--min-support S] [--out DIR] [...]   rules from a FIMI file\n"
    "  cvm gen --customers N --seed S --out DIR [...]   generate sample/benchmark data\n"
    "  cvm --help | --version | COMMAND --help\n"
    "\n"
    "Exit codes: 0 ok, 2 usage or config error, 3 input-data error, 4 output error,\n"
    "5 internal error, 6 another run of the same job is in progress.\n";

static const char *const usage_run =
    "Usage: cvm run JOB [options]\n"
    "Run a job: ingest, evaluate, recommend, publish a run directory under output.dir.\n"
    "  --set KEY=VALUE   override any config key (repeatable), e.g. --set rfm.bins=4\n"
    "  --threads N       worker threads (default: job.threads, 0 = all cores)\n"
    "  --out DIR         output directory (default: output.dir)\n"
    "  --as-of DATE      evaluation date YYYY-MM-DD (default: day after the last purchase)\n"
    "  --no-cache        parse the CSV even if input.cache has a valid parse cache\n"
    "  --quiet           only warnings and errors on stderr\n"
    "  --log-format F    text (default) or json, one object per line\n"
    "Prints the published run directory on stdout.\n";

static const char *const usage_validate =
    "Usage: cvm validate JOB [--set KEY=VALUE]... [--out DIR] [--quiet] [--log-format F]\n"
    "Check the config and every input, write rejects.csv and summary.json into a\n"
    "JOBNAME-validate-* directory (the `latest` link does not move); run no model.\n";

static const char *const usage_config =
    "Usage: cvm config JOB|- [--set KEY=VALUE]... [--docs] [--markdown]\n"
    "Print the effective configuration as YAML (--docs adds each key's documentation).\n"
    "--markdown prints the reference of every key (docs/config.md). JOB '-' = defaults only.\n";

typedef struct cli {
    const char *job;
    const char **sets;
    size_t n_sets;
    const char **grid;
    size_t n_grid;
    int threads;
    const char *out, *as_of, *log_format;
    int quiet, docs, markdown, help;
} cli;

/* Value of option argv[*i] (advancing *i), or NULL after an error message. */
static const char *opt_value(int argc, char **argv, int *i, const char *cmd)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "cvm %s: %s needs a value\n", cmd, argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int parse_common(int argc, char **argv, cli *c, const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->sets = calloc((size_t)argc + 1, sizeof *c->sets);
    c->grid = calloc((size_t)argc + 1, sizeof *c->grid);
    if (c->sets == NULL || c->grid == NULL)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->help = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            c->quiet = 1;
        } else if (strcmp(a, "--docs") == 0) {
            c->docs = 1;
        } else if (strcmp(a, "--markdown") == 0) {
            c->markdown = 1;
        } else if (strcmp(a, "--no-cache") == 0) {
            c->sets[c->n_sets++] = "input.cache=false";
        } else if (strncmp(a, "--set=", 6) == 0) {
            c->sets[c->n_sets++] = a + 6;
        } else if (strcmp(a, "--set") == 0) {
            if ((val = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
            c->sets[c->n_sets++] = val;
        } else if (strcmp(a, "--grid") == 0 && strcmp(cmd, "sweep") == 0) {
            if ((val = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
            c->grid[c->n_grid++] = val;
        } else if (strcmp(a, "--threads") == 0) {
            if ((val = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
            char *end;
            long t = strtol(val, &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "cvm %s: --threads must be 1..1024, got '%s'\n", cmd, val);
                return -1;
            }
            c->threads = (int)t;
        } else if (strcmp(a, "--out") == 0) {
            if ((c->out = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
        } else if (strcmp(a, "--as-of") == 0) {
            if ((c->as_of = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
        } else if (strcmp(a, "--log-format") == 0) {
            if ((val = opt_value(argc, argv, &i, cmd)) == NULL)
                return -1;
            if (strcmp(val, "text") != 0 && strcmp(val, "json") != 0) {
                fprintf(stderr, "cvm %s: --log-format must be text or json, got '%s'\n", cmd, val);
                return -1;
            }
            c->log_format = val;
        } else if (c->job == NULL && (a[0] != '-' || strcmp(a, "-") == 0)) {
            c->job = a;
        } else if (a[0] == '-' && strcmp(a, "-") != 0) {
            fprintf(stderr, "cvm %s: unknown option '%s' (see cvm %s --help)\n", cmd, a, cmd);
            return -1;
        } else {
            fprintf(stderr, "cvm %s: unexpected argument '%s'\n", cmd, a);
            return -1;
        }
    }
    return 0;
}

static const char *const usage_sweep =
    "Usage: cvm sweep JOB --grid KEY=V1,V2,... [--grid ...] [--set KEY=VALUE]... [--out DIR]\n"
    "Parse the inputs once (the parse cache is used when input.cache is on) and evaluate\n"
    "every combination of the grid values (model settings only: k range, minimum\n"
    "support, bin counts, thresholds...). Writes JOBNAME-sweep-* with sweep.csv (one row\n"
    "per point: the values and the key figures side by side) and points/NNN/summary.json.\n"
    "The `latest` link does not move.\n";

static int cmd_run(int argc, char **argv, int mode)
{
    bool validate = mode == 1;
    const char *cmd = mode == 1 ? "validate" : mode == 2 ? "sweep" : "run";
    cli c;
    if (parse_common(argc, argv, &c, cmd) != 0) {
        free(c.sets), free(c.grid);
        return CVM_EXIT_USAGE;
    }
    if (c.help) {
        fputs(mode == 1 ? usage_validate : mode == 2 ? usage_sweep : usage_run, stdout);
        free(c.sets), free(c.grid);
        return 0;
    }
    if (mode == 2 && c.n_grid == 0) {
        fprintf(stderr, "cvm sweep: at least one --grid KEY=V1,V2 is required\n");
        free(c.sets), free(c.grid);
        return CVM_EXIT_USAGE;
    }
    if (c.job == NULL || strcmp(c.job, "-") == 0) {
        fprintf(stderr, "cvm %s: a job file is required (see cvm %s --help)\n", cmd, cmd);
        free(c.sets), free(c.grid);
        return CVM_EXIT_USAGE;
    }
    cvm_log log;
    cvm_log_init(&log, c.quiet, c.log_format && strcmp(c.log_format, "json") == 0);
    cvm_job_opts o = {c.job, c.sets, c.n_sets, c.threads, c.out, c.as_of, validate,
                      c.grid, c.n_grid};
    cvm_job_report rep;
    cvm_err err = {0};
    int rc = cvm_job_run(&o, &log, &rep, &err);
    if (rc != CVM_OK) {
        cvm_log_msg(&log, CVM_LOG_ERROR, "%s", err.msg);
        if (rep.run_dir[0])
            cvm_log_msg(&log, CVM_LOG_ERROR, "rejects and summary kept in %s", rep.run_dir);
    } else {
        cvm_log_msg(&log, CVM_LOG_INFO, "%s: %zu customers, %zu rows (%zu rejected) -> %s",
                    validate ? "validated" : "done", rep.customers, rep.rows, rep.rejected,
                    rep.run_dir);
        printf("%s\n", rep.run_dir);
    }
    free(c.sets), free(c.grid);
    return rep.exit_code;
}

static int cmd_config(int argc, char **argv)
{
    size_t nschema;
    cli c;
    if (parse_common(argc, argv, &c, "config") != 0) {
        free(c.sets), free(c.grid);
        return CVM_EXIT_USAGE;
    }
    if (c.help) {
        fputs(usage_config, stdout);
        free(c.sets), free(c.grid);
        return 0;
    }
    if (c.markdown) {
        free(c.sets), free(c.grid);
        const cvm_cfg_key *schema = cvm_job_schema(&nschema);
        return cvm_config_write_markdown(schema, nschema, stdout) == CVM_OK
                   ? 0 : CVM_EXIT_INTERNAL;
    }
    if (c.job == NULL) {
        fprintf(stderr, "cvm config: a job file (or -) is required\n");
        free(c.sets), free(c.grid);
        return CVM_EXIT_USAGE;
    }
    cvm_job_opts o = {strcmp(c.job, "-") == 0 ? NULL : c.job, c.sets, c.n_sets, c.threads, c.out,
                      c.as_of, false, NULL, 0};
    cvm_config *cfg = NULL;
    cvm_err err = {0};
    int rc = cvm_job_config(&o, &cfg, &err);
    if (rc != CVM_OK && o.job_path == NULL && rc == CVM_ECONFIG) {
        /* Defaults alone lack the transactions path: still print them. */
        const cvm_cfg_key *schema = cvm_job_schema(&nschema);
        cfg = cvm_config_new(schema, nschema);
        rc = cfg ? CVM_OK : CVM_ENOMEM;
        for (size_t i = 0; cfg && rc == CVM_OK && i < c.n_sets; i++)
            rc = cvm_config_set(cfg, c.sets[i], &err);
    }
    free(c.sets), free(c.grid);
    if (rc != CVM_OK) {
        fprintf(stderr, "cvm config: %s\n", err.msg);
        cvm_config_free(cfg);
        return cvm_job_exit_code(rc, false);
    }
    rc = cvm_config_write_yaml(cfg, stdout, c.docs);
    cvm_config_free(cfg);
    return rc == CVM_OK ? 0 : CVM_EXIT_INTERNAL;
}

int main(int argc, char **argv)
{
    /* GSL's default handler aborts; cvm checks every status instead. */
    gsl_set_error_handler_off();
#ifdef __GLIBC__
    /* Large blocks (ingest chunks are freed as the table is built) go back to
     * the system when freed instead of staying in the heap: this is what
     * keeps the peak memory of a 10M-line job under 1 GiB. */
    if (!getenv("CVM_NO_MALLOPT")) mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    if (argc < 2) {
        fputs(usage_main, stderr);
        return CVM_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("cvm %s\n", CVM_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1, 0);
    if (strcmp(cmd, "validate") == 0)
        return cmd_run(argc - 1, argv + 1, 1);
    if (strcmp(cmd, "sweep") == 0)
        return cmd_run(argc - 1, argv + 1, 2);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1);
    if (strcmp(cmd, "gen") == 0) {
        cvm_err err = {0};
        int rc = cvm_gen_cli(argc - 1, argv + 1, &err);
        if (rc != CVM_OK) {
            fprintf(stderr, "cvm gen: %s\n", err.msg);
            return cvm_job_exit_code(rc, true);
        }
        return 0;
    }
    if (strcmp(cmd, "rules") == 0) {
        cvm_err err = {0};
        int rc = cvm_rules_cli(argc - 1, argv + 1, &err);
        if (rc != CVM_OK) {
            fprintf(stderr, "cvm rules: %s\n", err.msg);
            return cvm_job_exit_code(rc, false);
        }
        return 0;
    }
    if (strcmp(cmd, "diff") == 0) {
        cvm_err err = {0};
        int rc = cvm_diff_cli(argc - 1, argv + 1, &err);
        if (rc != CVM_OK) {
            fprintf(stderr, "cvm diff: %s\n", err.msg);
            return cvm_job_exit_code(rc, false);
        }
        return 0;
    }
    fprintf(stderr, "cvm: unknown command '%s'\n\n%s", cmd, usage_main);
    return CVM_EXIT_USAGE;
}
