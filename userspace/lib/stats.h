/* Datapath counters (rota_stats), summed over CPUs. */
#pragma once
#include "dp.h"

int rota_stats_read(const struct rota_dp *dp, struct rota_stat_val out[ROTA_STAT_MAX]);
/* Stable snake_case name of a counter, as the CLI and metrics print it. */
const char *rota_stat_name(unsigned int reason);
