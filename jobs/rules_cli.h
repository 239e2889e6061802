/*
 * rules_cli.h - the `cvm rules` subcommand: association rules from a FIMI
 * basket file, for data scientists, without a job file.
 *
 *     char *argv[] = {"rules", "--baskets", "retail.dat", "--min-support", "0.001",
 *                     "--out", "out/rules", NULL};
 *     int rc = cvm_rules_cli(7, argv, &err);   // CVM_OK, or a status with err.msg
 *
 * argv[0] is "rules". Writes rules.csv and itemsets.csv (the formats of the
 * rules stage, segment "(all)") into --out (created if missing; default
 * "."). `--help` prints the usage to stdout and returns CVM_OK; on success a
 * one-line summary with timings goes to stderr. Never exits: the caller
 * maps the status to an exit code (CVM_EINVAL: bad usage, naming the option;
 * CVM_ELIMIT: the explosion guard, naming the support to raise; CVM_EIO ...).
 */
#ifndef CVM_RULES_CLI_H
#define CVM_RULES_CLI_H

#include "error.h"

/** @brief Run `cvm rules` with its own argv (argv[0] == "rules"). */
int cvm_rules_cli(int argc, char **argv, cvm_err *err);

#endif /* CVM_RULES_CLI_H */
