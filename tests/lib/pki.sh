# Test PKI for client-certificate authentication, sourced by tests that need
# it. Everything is written under $CC (set by the caller).

# new_ca NAME: a self-signed CA in $CC/NAME.{crt,key}.
new_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$CC/$1.key" -out "$CC/$1.crt" >/dev/null 2>&1
}

# new_cert CA NAME SUBJECT [EXTENDED-KEY-USAGE [DAYS]]: $CC/NAME.{crt,key}
# signed by CA; usage defaults to clientAuth, DAYS to 2 (-1: expired yesterday).
new_cert() {
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\n' \
		"${4:-clientAuth}" >"$CC/$2.ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$3" -keyout "$CC/$2.key" \
		-out "$CC/$2.csr" >/dev/null 2>&1 &&
		openssl x509 -req -in "$CC/$2.csr" -CA "$CC/$1.crt" -CAkey "$CC/$1.key" -days "${5:-2}" \
			-extfile "$CC/$2.ext" -out "$CC/$2.crt" >/dev/null 2>&1
}

# cert_kubeconfig NAME SERVER SERVING-CA: $CC/NAME.kubeconfig with NAME's
# certificate and key and the serving CA inline, no token.
cert_kubeconfig() {
	cat >"$CC/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 "$3")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$CC/$1.crt")
    client-key-data: $(base64 -w0 "$CC/$1.key")
contexts:
- name: test
  context: {cluster: test, user: $1}
current-context: test
KC
}
