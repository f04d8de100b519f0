/* crypt.c: secrets encrypted at rest with AES-256-GCM (OpenSSL), stored as
 * kube-apiserver's aesgcm provider does: "k8s:enc:aesgcm:v1:<key name>:"
 * followed by a 12-byte nonce, the ciphertext and the 16-byte tag. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "apiserver.h"
#include "log.h"
#include "util.h"

#define NONCE 12
#define TAG 16

int crypt_load_key(struct apiserver *as, const char *file)
{
	char *text = NULL;
	unsigned char *raw = NULL;
	size_t len, rawlen;
	int err = read_file(file, &text, &len);

	if (err) {
		pr_warn("--encryption-key-file %s: %s", file, strerror(-err));
		return err;
	}
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = 0;
	if (len == 32) {
		memcpy(as->enc_key, text, 32);
	} else if (!b64_decode(text, len, &raw, &rawlen) && rawlen == 32) {
		memcpy(as->enc_key, raw, 32);
	} else {
		pr_warn("--encryption-key-file %s: want 32 bytes, raw or base64 (e.g. head -c 32 /dev/urandom | base64)",
			file);
		err = -EINVAL;
	}
	free(raw);
	free(text);
	if (!err) {
		as->enc = true;
		snprintf(as->enc_name, sizeof(as->enc_name), "key1");
	}
	return err;
}

int crypt_seal(const struct apiserver *as, const char *plain, size_t len, char **out, size_t *outlen)
{
	char prefix[96];
	size_t plen = snprintf(prefix, sizeof(prefix), "k8s:enc:aesgcm:v1:%s:", as->enc_name);
	unsigned char *buf = malloc(plen + NONCE + len + TAG + 1), *nonce, *ct;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, err = -EIO;

	if (!buf || !ctx) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(buf, prefix, plen);
	nonce = buf + plen;
	ct = nonce + NONCE;
	if (random_bytes(nonce, NONCE))
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, as->enc_key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, (const unsigned char *)plain, len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG, ct + len) != 1)
		goto out;
	*outlen = plen + NONCE + len + TAG;
	buf[*outlen] = 0;
	*out = (char *)buf;
	buf = NULL;
	err = 0;
out:
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

int crypt_open(const struct apiserver *as, const char *value, size_t len, char **out, size_t *outlen)
{
	char prefix[96];
	size_t plen = snprintf(prefix, sizeof(prefix), "k8s:enc:aesgcm:v1:%s:", as->enc_name);
	const unsigned char *nonce, *ct;
	EVP_CIPHER_CTX *ctx;
	unsigned char *buf;
	size_t clen;
	int n, err = -EIO;

	if (!as->enc || len < plen + NONCE + TAG || memcmp(value, prefix, plen))
		return -ENOKEY;
	nonce = (const unsigned char *)value + plen;
	ct = nonce + NONCE;
	clen = len - plen - NONCE - TAG;
	buf = malloc(clen + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!buf || !ctx) {
		err = -ENOMEM;
		goto out;
	}
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, as->enc_key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, buf, &n, ct, clen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG, (void *)(ct + clen)) != 1 ||
	    EVP_DecryptFinal_ex(ctx, buf + n, &n) != 1) {
		err = -EBADMSG;
		goto out;
	}
	buf[clen] = 0;
	*out = (char *)buf;
	*outlen = clen;
	buf = NULL;
	err = 0;
out:
	free(buf);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}
