/* commands.h: the entry point of each bneck command (stages/ and pipeline/).
 * Each takes argv with argv[0] = the command name, and returns the process
 * exit status (0 ok, 1 failed run, 2 bad command line). MPI is initialised by
 * main() before the call when the command needs it. */
#ifndef BN_COMMANDS_H
#define BN_COMMANDS_H

int bn_cmd_corpus(int argc, char **argv);   /* stages/corpus.c */
int bn_cmd_mkcorpus(int argc, char **argv); /* stages/mkcorpus.c */
int bn_cmd_mkweights(int argc, char **argv); /* stages/mkweights.c */
int bn_cmd_features(int argc, char **argv); /* stages/features.c */
int bn_cmd_benchmark(int argc, char **argv); /* stages/benchmark.c */
int bn_cmd_cost(int argc, char **argv);      /* stages/cost.c */
int bn_cmd_calibrate(int argc, char **argv); /* stages/calibrate.c */
int bn_cmd_extract(int argc, char **argv); /* stages/extract.c */
int bn_cmd_train(int argc, char **argv);    /* stages/train.c */
int bn_cmd_classify(int argc, char **argv); /* stages/classify.c */
int bn_cmd_retrain(int argc, char **argv);  /* stages/retrain.c */
int bn_cmd_mkfeatures(int argc, char **argv); /* stages/mkfeatures.c */
int bn_cmd_join(int argc, char **argv);     /* stages/join.c */
int bn_cmd_run(int argc, char **argv);       /* pipeline/run.c */
int bn_cmd_report(int argc, char **argv);    /* stages/report.c */

#endif
