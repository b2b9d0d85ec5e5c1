#!/usr/bin/env bash
# Generates the synthetic TEST PKI used by the test suite (shaped like IGC-Santé, but NOT IGC-Santé).
# TEST ONLY: every private key is published in this repository. Never trust these CAs anywhere else.
#
# Usage: certs/generate.sh            (writes ca/, tls/, smime/, crl/, listeblanche/ next to this script)
# Needs: openssl 3.0+ (for -crl_lastupdate / -crl_nextupdate), sha256sum.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

# Validity windows. The CAs start before the expired leaf so that "expired" is the only fault of that leaf.
CA_START=20230101000000Z
GOOD_START=20250101000000Z
END=20451231000000Z
EXPIRED_START=20240101000000Z
EXPIRED_END=20250101000000Z
NOTYET_START=20400101000000Z
# CRL times: the good CRLs were "issued" in 2025 and stay fresh until 2045; the revocations predate them.
CRL_LAST=20250601000000Z
CRL_NEXT=20451231000000Z
REVOKED_AT=250301000000Z
EXPIRED_CRL_LAST=20240101000000Z
EXPIRED_CRL_NEXT=20240201000000Z
CRL_URL_BASE="http://crl.test.invalid"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

rm -rf ca tls smime crl listeblanche
mkdir -p ca tls smime crl listeblanche

# ---------------------------------------------------------------- openssl configuration
for ca in root org rogue; do
    mkdir -p "$WORK/$ca/newcerts"
    : >"$WORK/$ca/index.txt"
    echo "unique_subject = no" >"$WORK/$ca/index.txt.attr"
    # Random starting serial so regenerated sets never collide with an older copy of the PKI.
    printf '%s\n' "$(openssl rand -hex 8 | sed 's/^./7/')" >"$WORK/$ca/serial"
    echo 1000 >"$WORK/$ca/crlnumber"
done

cat >"$WORK/openssl.cnf" <<EOF
WORK = $WORK
CRL_URL_BASE = $CRL_URL_BASE

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = placeholder

EOF

# One CA section per CA: the same settings, each in its own directory.
for ca in root org rogue; do
    cat >>"$WORK/openssl.cnf" <<EOF
[ CA_$ca ]
dir = \$WORK/$ca
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
new_certs_dir = \$dir/newcerts
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
policy = policy_any
preserve = yes
email_in_dn = no
unique_subject = no
crl_extensions = crl_ext

EOF
done

cat >>"$WORK/openssl.cnf" <<EOF
[ policy_any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ v3_root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_org_ca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/root.crl

# TLS client of an MTA (IGC-Santé ORG AUTH_CLI-like).
[ v3_tls_client ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl

[ v3_tls_client_rogue ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/rogue.crl

# The gateway's MTA certificate (SERV SSL-like): it is a server to operators and a client to them.
[ v3_tls_gateway ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl

# ORG SIGN-like (see DOMAIN.md 2.3), with the tolerated private ASIP marker extension.
[ v3_sign ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl
1.2.250.1.71.1.2.5 = DER:04:01:83

[ v3_sign_san ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:secretariat@hopital-a.mssante.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl
1.2.250.1.71.1.2.5 = DER:04:01:83

[ v3_sign_san_rogue ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = emailProtection
subjectAltName = email:secretariat@hopital-a.mssante.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/rogue.crl

[ v3_sign_no_emailprotection ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = clientAuth
subjectAltName = email:secretariat@hopital-a.mssante.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl

# ORG CONF-like: the gateway's encryption certificate.
[ v3_conf ]
basicConstraints = critical, CA:false
keyUsage = critical, keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = email:passerelle@gateway.mssante.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:\$CRL_URL_BASE/org.crl
EOF
CNF="$WORK/openssl.cnf"

# ---------------------------------------------------------------- helpers
# newkey FILE [rsa|ec]: PKCS#8 PEM, unencrypted.
newkey() {
    if [[ "${2:-rsa}" == ec ]]; then
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    else
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
    fi
    chmod 600 "$1"
}

# sign CA_NAME EXT SUBJECT KEY OUT_CERT START END [MD]
sign() {
    local ca="$1" ext="$2" subject="$3" key="$4" out="$5" start="$6" end="$7" md="${8:-sha256}"
    openssl req -new -config "$CNF" -key "$key" -subj "$subject" -out "$WORK/req.csr"
    openssl ca -config "$CNF" -name "CA_$ca" -batch -notext -md "$md" -extensions "$ext" \
        -startdate "$start" -enddate "$end" -in "$WORK/req.csr" -out "$out" 2>/dev/null
}

# leaf CA_NAME EXT SUBJECT OUT_BASE START END [KEYTYPE] [MD]: writes OUT_BASE.key and OUT_BASE.pem (leaf + issuer).
leaf() {
    local ca="$1" ext="$2" subject="$3" base="$4" start="$5" end="$6" keytype="${7:-rsa}" md="${8:-sha256}"
    newkey "$base.key" "$keytype"
    sign "$ca" "$ext" "$subject" "$base.key" "$WORK/leaf.pem" "$start" "$end" "$md"
    cat "$WORK/leaf.pem" "$WORK/$ca/ca.pem" >"$base.pem"
}

# ---------------------------------------------------------------- CAs
ROOT_DN="/C=FR/O=IGC-SANTE TEST SYNTHETIQUE/OU=IGC-SANTE TEST/CN=IGC-Sante TEST Racine"
ORG_DN="/C=FR/O=IGC-SANTE TEST SYNTHETIQUE/OU=IGC-SANTE TEST/CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS"
ROGUE_DN="/C=FR/O=ROGUE TEST/OU=NOT IGC-SANTE/CN=ROGUE TEST Racine"

newkey ca/root.key
openssl req -new -config "$CNF" -key ca/root.key -subj "$ROOT_DN" -out "$WORK/root.csr"
openssl ca -config "$CNF" -name CA_root -batch -notext -selfsign -keyfile ca/root.key -extensions v3_root \
    -startdate "$CA_START" -enddate "$END" -in "$WORK/root.csr" -out ca/root.pem 2>/dev/null
cp ca/root.pem "$WORK/root/ca.pem"
cp ca/root.key "$WORK/root/ca.key"

newkey ca/org.key
sign root v3_org_ca "$ORG_DN" ca/org.key ca/org.pem "$CA_START" "$END"
cp ca/org.pem "$WORK/org/ca.pem"
cp ca/org.key "$WORK/org/ca.key"

newkey ca/rogue.key
openssl req -new -config "$CNF" -key ca/rogue.key -subj "$ROGUE_DN" -out "$WORK/rogue.csr"
openssl ca -config "$CNF" -name CA_rogue -batch -notext -selfsign -keyfile ca/rogue.key -extensions v3_root \
    -startdate "$CA_START" -enddate "$END" -in "$WORK/rogue.csr" -out ca/rogue.pem 2>/dev/null
cp ca/rogue.pem "$WORK/rogue/ca.pem"
cp ca/rogue.key "$WORK/rogue/ca.key"

cat ca/org.pem ca/root.pem >ca/bundle.pem

# ---------------------------------------------------------------- subjects (synthetic)
# Encoded order C, ST, O, OU, CN so that the RFC 4514 string reads CN=...,OU=...,O=...,ST=...,C=FR.
GATEWAY_DN="/C=FR/ST=Paris (75)/O=PASSERELLE MSSANTE TEST/OU=10000000090009/CN=localhost"
HOPITAL_A_DN="/C=FR/ST=Paris (75)/O=HOPITAL A TEST/OU=10000000010001/CN=mx.hopital-a.mssante.test"
LABO_B_DN="/C=FR/ST=Rhone (69)/O=LABO B TEST/OU=300000000020002/CN=mx.labo-b.mssante.test"
hopital_a() { echo "/C=FR/ST=Paris (75)/O=HOPITAL A TEST/OU=10000000010001/CN=$1"; }

# ---------------------------------------------------------------- TLS leaves
leaf org v3_tls_gateway "$GATEWAY_DN" tls/gateway "$GOOD_START" "$END"
leaf org v3_tls_client "$HOPITAL_A_DN" tls/hopital-a "$GOOD_START" "$END"
leaf org v3_tls_client "$LABO_B_DN" tls/labo-b "$GOOD_START" "$END"
leaf org v3_tls_client "$(hopital_a revoked.hopital-a.mssante.test)" tls/revoked "$GOOD_START" "$END"
leaf org v3_tls_client "$(hopital_a expired.hopital-a.mssante.test)" tls/expired "$EXPIRED_START" "$EXPIRED_END"
leaf org v3_tls_client "$(hopital_a notyet.hopital-a.mssante.test)" tls/notyet "$NOTYET_START" "$END"
# Same subject as tls/hopital-a (an impersonation attempt): only the chain can tell them apart.
leaf rogue v3_tls_client_rogue "$HOPITAL_A_DN" tls/rogue "$GOOD_START" "$END"

# ---------------------------------------------------------------- S/MIME leaves
SIGN_A_DN="$(hopital_a secretariat.hopital-a.mssante.test)"
leaf org v3_sign_san "$SIGN_A_DN" smime/sign-hopital-a "$GOOD_START" "$END"
leaf org v3_sign "/C=FR/ST=Rhone (69)/O=LABO B TEST/OU=300000000020002/CN=resultats.labo-b.mssante.test" \
    smime/sign-labo-b "$GOOD_START" "$END"
leaf org v3_sign_san "$(hopital_a secretariat-ecdsa.hopital-a.mssante.test)" smime/sign-ecdsa \
    "$GOOD_START" "$END" ec
leaf org v3_sign_san "$(hopital_a sign-revoked.hopital-a.mssante.test)" smime/sign-revoked "$GOOD_START" "$END"
leaf org v3_sign_san "$(hopital_a sign-expired.hopital-a.mssante.test)" smime/sign-expired \
    "$EXPIRED_START" "$EXPIRED_END"
leaf org v3_sign_san "$(hopital_a sign-notyet.hopital-a.mssante.test)" smime/sign-notyet "$NOTYET_START" "$END"
leaf rogue v3_sign_san_rogue "$SIGN_A_DN" smime/sign-rogue "$GOOD_START" "$END"
leaf org v3_sign_no_emailprotection "$(hopital_a sign-noemail.hopital-a.mssante.test)" \
    smime/sign-no-emailprotection "$GOOD_START" "$END"
leaf org v3_sign_san "$(hopital_a sign-sha1.hopital-a.mssante.test)" smime/sign-sha1 "$GOOD_START" "$END" rsa sha1
leaf org v3_conf "/C=FR/ST=Paris (75)/O=PASSERELLE MSSANTE TEST/OU=10000000090009/CN=gateway.mssante.test" \
    smime/gateway-conf "$GOOD_START" "$END"

# ---------------------------------------------------------------- CRLs
gencrl() { # gencrl CA_NAME OUT LAST NEXT
    openssl ca -config "$CNF" -name "CA_$1" -batch -gencrl -md sha256 \
        -crl_lastupdate "$3" -crl_nextupdate "$4" -out "$2" 2>/dev/null
}
# The expired org CRL is made before any revocation: it is only there to be stale.
gencrl org crl/org-expired.crl.pem "$EXPIRED_CRL_LAST" "$EXPIRED_CRL_NEXT"
for revoked in tls/revoked smime/sign-revoked; do
    openssl x509 -in "$revoked.pem" -out "$WORK/revoked.pem"
    openssl ca -config "$CNF" -name CA_org -batch -revoke "$WORK/revoked.pem" -crl_reason keyCompromise 2>/dev/null
done
# openssl ca records "now" as the revocation date; move it before the CRL's lastUpdate.
awk -F'\t' -v OFS='\t' -v at="$REVOKED_AT" '$1 == "R" { split($3, r, ","); $3 = at "," r[2] } { print }' \
    "$WORK/org/index.txt" >"$WORK/index.new"
mv "$WORK/index.new" "$WORK/org/index.txt"
gencrl org crl/org.crl.pem "$CRL_LAST" "$CRL_NEXT"
gencrl root crl/root.crl.pem "$CRL_LAST" "$CRL_NEXT"
gencrl rogue crl/rogue.crl.pem "$CRL_LAST" "$CRL_NEXT"
# DER copies, as a CRL distribution point would serve them.
for name in root org rogue org-expired; do
    openssl crl -in "crl/$name.crl.pem" -outform DER -out "crl/$name.crl"
done

# ---------------------------------------------------------------- liste blanche
dn_of() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
GATEWAY_RFC="$(dn_of tls/gateway.pem)"
HOPITAL_A_RFC="$(dn_of tls/hopital-a.pem)"
LABO_B_RFC="$(dn_of tls/labo-b.pem)"
domaine() { # domaine NOM DESCRIPTION DN
    cat <<EOF
    <Domaine>
      <Nom>$1</Nom>
      <Description>$2</Description>
      <DNCertificatOperateur>$3</DNCertificatOperateur>
      <ResponsableContact>responsable@$1</ResponsableContact>
      <SupportContact>support@$1</SupportContact>
      <DateMAJ>2025-06-01T00:00:00Z</DateMAJ>
    </Domaine>
EOF
}
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">'
    echo '  <DateDeGeneration>2025-06-01T00:00:00Z</DateDeGeneration>'
    echo '  <ListeDomaines>'
    domaine hopital-a.mssante.test "HOPITAL A TEST (synthetique)" "$HOPITAL_A_RFC"
    # Listed so that refusing these clients is the TLS layer's job, not the liste blanche's.
    for bad in revoked expired notyet; do
        domaine hopital-a.mssante.test "HOPITAL A TEST (synthetique, $bad)" "$(dn_of "tls/$bad.pem")"
    done
    domaine labo-b.mssante.test "LABO B TEST (synthetique)" "$LABO_B_RFC"
    # A second MTA for the same domain, as the real list has (no certificate generated for it).
    domaine labo-b.mssante.test "LABO B TEST (synthetique, second MTA)" \
        "CN=mx2.labo-b.mssante.test,OU=300000000020002,O=LABO B TEST,ST=Rhone (69),C=FR"
    domaine gateway.mssante.test "PASSERELLE MSSANTE TEST (synthetique)" "$GATEWAY_RFC"
    echo '  </ListeDomaines>'
    echo '</ListeBlancheMSSante>'
} >listeblanche/listeblanchemssante.xml
(cd listeblanche && sha256sum listeblanchemssante.xml >listeblanchemssante.xml.sha256)

# ---------------------------------------------------------------- self-check
check() { # check EXPECT(ok|fail) CAFILE CRLFILES CERT
    local expect="$1" cafile="$2" crls="$3" cert="$4" out
    if out="$(openssl verify -CAfile "$cafile" -CRLfile "$crls" -crl_check_all "$cert" 2>&1)"; then
        [[ "$expect" == ok ]] || { echo "UNEXPECTED PASS: $cert: $out" >&2; exit 1; }
    else
        [[ "$expect" == fail ]] || { echo "UNEXPECTED FAIL: $cert: $out" >&2; exit 1; }
    fi
}
cat crl/root.crl.pem crl/org.crl.pem >"$WORK/crls.pem"
cat crl/rogue.crl.pem >"$WORK/rogue-crls.pem"
for good in tls/gateway tls/hopital-a tls/labo-b smime/sign-hopital-a smime/sign-labo-b smime/sign-ecdsa \
    smime/sign-no-emailprotection smime/sign-sha1 smime/gateway-conf; do
    openssl x509 -in "$good.pem" -out "$WORK/leaf.pem"
    check ok ca/bundle.pem "$WORK/crls.pem" "$WORK/leaf.pem"
done
for bad in tls/revoked tls/expired tls/notyet tls/rogue smime/sign-revoked smime/sign-expired smime/sign-notyet \
    smime/sign-rogue; do
    openssl x509 -in "$bad.pem" -out "$WORK/leaf.pem"
    check fail ca/bundle.pem "$WORK/crls.pem" "$WORK/leaf.pem"
done
openssl x509 -in tls/rogue.pem -out "$WORK/leaf.pem"
check ok ca/rogue.pem "$WORK/rogue-crls.pem" "$WORK/leaf.pem"
echo "test PKI written to $HERE (verification passed)"
