/* Fixed-width types for the kernel↔user contract, from vmlinux.h in BPF
 * code and from the UAPI headers in userspace. */
#pragma once

#ifdef __bpf__
#include "vmlinux.h"
#else
#include <linux/types.h>
#endif

#define ROTA_ASSERT_SIZE(type, size) \
	_Static_assert(sizeof(type) == (size), #type " must be " #size " bytes: it is part of the map ABI")
