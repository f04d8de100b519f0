// SPDX-License-Identifier: GPL-2.0
/* pod.bpf.c for kernels without bpf_cast_to_kern_ctx (before Linux 6.2):
 * the same programs, with the established path's checksums left to the
 * bpf_l4_csum_replace() helper (see skb_ip_summed() in lib/nat.h). The
 * loader picks this object when the kernel lacks the kfunc. */
#define ROTA_NO_KFUNC 1
#include "pod.bpf.c"
