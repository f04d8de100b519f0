/* auth.c: who a request comes from. Bearer tokens: a kube-apiserver style
 * token file (CSV: token,user,uid[,"group1,group2"]) and the generated admin
 * token. Client certificates: verified against --client-ca-file, the user
 * is the subject's CN and the groups its O entries, as in kube-apiserver. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "apiserver.h"
#include "log.h"
#include "util.h"

/* libmicrohttpd terminates TLS with GnuTLS and hands out the session: the
 * peer's certificates come from GnuTLS, their verification from OpenSSL
 * like every other certificate here. */

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

/* The subject's entries of one kind (CN, O), comma-separated; returns how many. */
static int subject_entries(X509 *c, int nid, char *out, size_t len)
{
	X509_NAME *name = X509_get_subject_name(c);
	size_t used = 0;
	int i = -1, count = 0;

	out[0] = '\0';
	while ((i = X509_NAME_get_index_by_NID(name, nid, i)) >= 0) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
		unsigned char *utf8 = NULL;
		int n = ASN1_STRING_to_UTF8(&utf8, v);

		if (n >= 0 && used + (size_t)n + 2 < len)
			used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "," : "", n, utf8);
		OPENSSL_free(utf8);
		count++;
	}
	return count;
}

int client_cert_user(const struct apiserver *as, struct MHD_Connection *conn, char *user, size_t len)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *peers;
	unsigned int n_peers = 0;
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *leaf = NULL;
	char cn[256], groups[512];
	int err = -EACCES, n_cn;

	if (!as->client_cas)
		return -ENOENT;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return -ENOENT;
	/* The TLS handshake proved the client holds the leaf's key; what is
	 * left is whether a CA we trust vouches for it, for client use. */
	peers = gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n_peers);
	if (!peers || !n_peers)
		return -ENOENT;
	{
		const unsigned char *p = peers[0].data;

		leaf = d2i_X509(NULL, &p, (long)peers[0].size);
	}
	chain = sk_X509_new_null();
	ctx = X509_STORE_CTX_new();
	if (!leaf || !chain || !ctx) {
		pr_info("client certificate: not a valid X.509 certificate");
		goto out;
	}
	for (unsigned int i = 1; i < n_peers; i++) {
		const unsigned char *p = peers[i].data;
		X509 *c = d2i_X509(NULL, &p, (long)peers[i].size);

		if (c && !sk_X509_push(chain, c))
			X509_free(c);
	}
	n_cn = subject_entries(leaf, NID_commonName, cn, sizeof(cn));
	if (!X509_STORE_CTX_init(ctx, as->client_cas, leaf, chain) ||
	    !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
		pr_warn("client certificate CN=%s: cannot set up its verification", cn);
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		pr_info("client certificate CN=%s: %s: unauthorized", cn,
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (n_cn != 1 || !*cn) {
		pr_info("client certificate: subject needs exactly one CN, the user name: unauthorized");
		goto out;
	}
	subject_entries(leaf, NID_organizationName, groups, sizeof(groups));
	snprintf(user, len, "%s", cn);
	pr_debug("client certificate: user %s, groups %s", cn, *groups ? groups : "(none)");
	err = 0;
out:
	X509_STORE_CTX_free(ctx);
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	return err;
}
