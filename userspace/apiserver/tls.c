/* tls.c: the cluster CA and the API server's serving certificate, made with
 * OpenSSL on first start and kept in <data-dir>/pki (ECDSA P-256; SANs for
 * loopback, the bind address, the kubernetes Service IP and its names); and
 * the CAs that client certificates are verified against (--client-ca-file). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>
#include "apiserver.h"
#include "log.h"
#include "util.h"

static void ssl_err(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	pr_warn("%s: %s", what, e ? buf : "unknown OpenSSL error");
}

static EVP_PKEY *gen_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	if (!k)
		ssl_err("generate P-256 key");
	return k;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex) {
		ssl_err(value);
		return -EINVAL;
	}
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       long days, bool ca, const char *san)
{
	X509 *c = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;

	if (!c)
		return NULL;
	X509_set_version(c, 2);
	random_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), days * 86400L);
	X509_set_pubkey(c, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(c));
	if (ca) {
		if (add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
		    add_ext(c, c, NID_subject_key_identifier, "hash"))
			goto fail;
	} else {
		if (add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(c, issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
		    add_ext(c, issuer, NID_ext_key_usage, "serverAuth") ||
		    add_ext(c, issuer, NID_authority_key_identifier, "keyid:always") ||
		    add_ext(c, issuer, NID_subject_alt_name, san))
			goto fail;
	}
	if (!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256())) {
		ssl_err("sign certificate");
		goto fail;
	}
	return c;
fail:
	X509_free(c);
	return NULL;
}

static char *cert_pem(X509 *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s = NULL;
	long n;

	if (b && PEM_write_bio_X509(b, c)) {
		n = BIO_get_mem_data(b, &p);
		s = strndup(p, n);
	}
	BIO_free(b);
	return s;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s = NULL;
	long n;

	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
		n = BIO_get_mem_data(b, &p);
		s = strndup(p, n);
	}
	BIO_free(b);
	return s;
}

static X509 *load_cert(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return c;
}

static EVP_PKEY *load_key(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}

static int save(const char *dir, const char *name, const char *text, int mode)
{
	char path[4096];
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	err = write_file(path, text, strlen(text), mode);
	if (err)
		pr_warn("write %s: %s", path, strerror(-err));
	return err;
}

int tls_ensure(const char *data_dir, const char *bind_addr, uint32_t svc_ip,
	       char **cert_out, char **key_out, char **ca_out)
{
	char dir[4096], path[4096], san[1024];
	char *ca_crt = NULL, *ca_key = NULL, *crt = NULL, *key = NULL;
	EVP_PKEY *cakey = NULL, *skey = NULL;
	X509 *ca = NULL, *srv = NULL;
	int err = 0;

	snprintf(dir, sizeof(dir), "%s/pki", data_dir);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_warn("mkdir %s: %s", dir, strerror(errno));
		return err;
	}
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if (read_file(path, &ca_crt, NULL) == 0) {
		snprintf(path, sizeof(path), "%s/ca.key", dir);
		if ((err = read_file(path, &ca_key, NULL))) {
			pr_warn("%s: %s (ca.crt exists without its key)", path, strerror(-err));
			goto out;
		}
		ca = load_cert(ca_crt);
		cakey = load_key(ca_key);
		if (!ca || !cakey) {
			pr_warn("%s/ca.crt or ca.key: not PEM", dir);
			err = -EINVAL;
			goto out;
		}
	} else {
		cakey = gen_key();
		ca = cakey ? make_cert(cakey, "rota-ca", NULL, NULL, 3650, true, NULL) : NULL;
		if (!ca) {
			err = -EIO;
			goto out;
		}
		ca_crt = cert_pem(ca);
		ca_key = key_pem(cakey);
		if (!ca_crt || !ca_key || (err = save(dir, "ca.key", ca_key, 0600)) ||
		    (err = save(dir, "ca.crt", ca_crt, 0644))) {
			err = err ? err : -ENOMEM;
			goto out;
		}
		pr_info("generated cluster CA in %s", dir);
	}

	snprintf(path, sizeof(path), "%s/apiserver.crt", dir);
	if (read_file(path, &crt, NULL) == 0) {
		snprintf(path, sizeof(path), "%s/apiserver.key", dir);
		if ((err = read_file(path, &key, NULL))) {
			pr_warn("%s: %s", path, strerror(-err));
			goto out;
		}
	} else {
		snprintf(san, sizeof(san),
			 "IP:127.0.0.1,DNS:localhost,IP:%u.%u.%u.%u,DNS:kubernetes,DNS:kubernetes.default,"
			 "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local%s%s",
			 svc_ip >> 24, (svc_ip >> 16) & 255, (svc_ip >> 8) & 255, svc_ip & 255,
			 strcmp(bind_addr, "127.0.0.1") && strcmp(bind_addr, "0.0.0.0") ? ",IP:" : "",
			 strcmp(bind_addr, "127.0.0.1") && strcmp(bind_addr, "0.0.0.0") ? bind_addr : "");
		skey = gen_key();
		srv = skey ? make_cert(skey, "rota-apiserver", ca, cakey, 365, false, san) : NULL;
		if (!srv) {
			err = -EIO;
			goto out;
		}
		crt = cert_pem(srv);
		key = key_pem(skey);
		if (!crt || !key || (err = save(dir, "apiserver.key", key, 0600)) ||
		    (err = save(dir, "apiserver.crt", crt, 0644))) {
			err = err ? err : -ENOMEM;
			goto out;
		}
		pr_info("generated serving certificate in %s (SAN %s)", dir, san);
	}
	*cert_out = crt;
	*key_out = key;
	*ca_out = ca_crt;
	crt = key = ca_crt = NULL;
out:
	free(ca_crt);
	free(ca_key);
	free(crt);
	free(key);
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(skey);
	return err;
}

int client_ca_load(struct apiserver *as, const char *file)
{
	X509_STORE *store = NULL;
	char *pem = NULL;
	BIO *b = NULL;
	X509 *c;
	int n = 0, err;

	if ((err = read_file(file, &pem, NULL))) {
		pr_warn("--client-ca-file %s: %s", file, strerror(-err));
		return err;
	}
	store = X509_STORE_new();
	b = BIO_new_mem_buf(pem, -1);
	if (!store || !b) {
		err = -ENOMEM;
		goto out;
	}
	while ((c = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
		if (!X509_STORE_add_cert(store, c)) {
			ssl_err("--client-ca-file: add certificate");
			X509_free(c);
			err = -EINVAL;
			goto out;
		}
		X509_free(c);
		n++;
	}
	ERR_clear_error();	/* the read that ended the loop */
	if (!n) {
		pr_warn("--client-ca-file %s: no PEM certificate in it", file);
		err = -EINVAL;
		goto out;
	}
	as->client_cas = store;
	as->client_ca_pem = pem;
	store = NULL;
	pem = NULL;
	pr_info("client certificates verified against %d CA%s from %s", n, n == 1 ? "" : "s", file);
out:
	BIO_free(b);
	X509_STORE_free(store);
	free(pem);
	return err;
}

void client_ca_free(struct apiserver *as)
{
	X509_STORE_free(as->client_cas);
	free(as->client_ca_pem);
	as->client_cas = NULL;
	as->client_ca_pem = NULL;
}
