/*
 * gen_cli.h - the `cvm gen` subcommand: options in, files out.
 *
 *     char *argv[] = {"gen", "--customers", "500", "--seed", "7", "--out", "x", NULL};
 *     int rc = cvm_gen_cli(7, argv, &err);   // CVM_OK, or CVM_EINVAL with err.msg
 *
 * argv[0] is "gen". `--help` prints the usage to stdout and returns CVM_OK;
 * on success a one-line summary goes to stderr. Never exits: the caller maps
 * the status to an exit code.
 */
#ifndef CVM_GEN_CLI_H
#define CVM_GEN_CLI_H

#include "error.h"

/** @brief Run `cvm gen` with its own argv (argv[0] == "gen").
 *  @return CVM_OK, CVM_EINVAL on bad usage (the message names the option),
 *          or the generator's status (CVM_EIO, CVM_ENOMEM, ...). */
int cvm_gen_cli(int argc, char **argv, cvm_err *err);

#endif /* CVM_GEN_CLI_H */
