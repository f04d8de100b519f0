/* patch.h: the three PATCH bodies kube-apiserver accepts: JSON merge patch
 * (RFC 7386), JSON patch (RFC 6902) and strategic merge patch. */
#pragma once
#include <cjson/cJSON.h>

/* Each applies patch to *doc in place (it may replace *doc) and returns 0,
 * or -EINVAL with errbuf naming what in the patch is wrong. */
int merge_patch_apply(cJSON **doc, const cJSON *patch);
/* JSON patch: the values its copy operations duplicate may add up to at
 * most copy_limit bytes (-E2BIG beyond), as kube-apiserver bounds them by
 * its request size limit. */
int json_patch_apply(cJSON **doc, const cJSON *patch, size_t copy_limit, char *errbuf, size_t errlen);
/* Strategic merge patch with the patch strategies of the Go types for the
 * kinds served here (lists merged by key: containers by name, service
 * ports by port, conditions by type, ...; other lists replaced). Supports
 * $patch (replace/delete/merge), $setElementOrder, $deleteFromPrimitiveList
 * and $retainKeys. */
int strategic_merge_patch_apply(cJSON **doc, const cJSON *patch, char *errbuf, size_t errlen);
