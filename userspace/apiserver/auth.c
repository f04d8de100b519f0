/* auth.c: bearer-token authentication: a kube-apiserver style token file
 * (CSV: token,user,uid[,"group1,group2"]) and the generated admin token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include "apiserver.h"
#include "log.h"
#include "util.h"

struct tokens {
	struct token_user *v;
	size_t n;
};

int tokens_add(struct tokens **tp, const char *token, const char *user, const char *uid,
	       const char *groups)
{
	struct tokens *t = *tp;
	struct token_user *v;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		*tp = t;
	}
	v = realloc(t->v, (t->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	v[t->n].token = strdup(token);
	v[t->n].user = strdup(user);
	v[t->n].uid = strdup(uid);
	v[t->n].groups = strdup(groups ? groups : "");
	t->n++;
	return 0;
}

/* Splits one CSV line with optional double-quoted fields. */
static int csv_fields(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	while (*p && n < max) {
		if (*p == '"') {
			char *end = strchr(p + 1, '"');

			if (!end)
				return -EINVAL;
			*end = 0;
			f[n++] = p + 1;
			p = end + 1;
			if (*p == ',')
				p++;
		} else {
			char *c = strchr(p, ',');

			f[n++] = p;
			if (!c)
				break;
			*c = 0;
			p = c + 1;
		}
	}
	return n;
}

int tokens_load(struct tokens **t, const char *file)
{
	FILE *f = fopen(file, "r");
	char line[4096];
	int lineno = 0, err = 0;

	if (!f) {
		err = -errno;
		pr_warn("--token-auth-file %s: %s", file, strerror(errno));
		return err;
	}
	while (fgets(line, sizeof(line), f)) {
		char *fld[4] = { 0 };
		int n;

		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		if (!*line || *line == '#')
			continue;
		n = csv_fields(line, fld, 4);
		if (n < 3 || !*fld[0] || !*fld[1]) {
			pr_warn("--token-auth-file %s:%d: want token,user,uid[,groups]", file, lineno);
			err = -EINVAL;
			break;
		}
		err = tokens_add(t, fld[0], fld[1], fld[2], n > 3 ? fld[3] : "");
		if (err)
			break;
	}
	fclose(f);
	return err;
}

const struct token_user *tokens_check(const struct tokens *t, const char *token)
{
	size_t len = strlen(token);

	for (size_t i = 0; t && i < t->n; i++)
		if (strlen(t->v[i].token) == len && !CRYPTO_memcmp(t->v[i].token, token, len))
			return &t->v[i];
	return NULL;
}

int admin_token(const char *data_dir, char out[65])
{
	char path[4096], *text = NULL;
	unsigned char rnd[32];
	int err;

	snprintf(path, sizeof(path), "%s/admin.token", data_dir);
	if (!read_file(path, &text, NULL)) {
		text[strcspn(text, "\r\n")] = 0;
		if (strlen(text) >= 32 && strlen(text) <= 64) {
			snprintf(out, 65, "%s", text);
			free(text);
			return 0;
		}
		free(text);
		pr_warn("%s: malformed, generating a new admin token", path);
	}
	err = random_bytes(rnd, sizeof(rnd));
	if (err)
		return err;
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
	err = write_file(path, out, 64, 0600);
	if (err)
		pr_warn("write %s: %s", path, strerror(-err));
	return err;
}

void tokens_free(struct tokens *t)
{
	for (size_t i = 0; t && i < t->n; i++) {
		free(t->v[i].token);
		free(t->v[i].user);
		free(t->v[i].uid);
		free(t->v[i].groups);
	}
	if (t)
		free(t->v);
	free(t);
}
