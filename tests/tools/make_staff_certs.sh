#!/bin/bash
# Makes the client certificates tests/client_certificate_test.cc signs in with, using OpenSSL's own
# `openssl ca` (a real issuing CA with its database, validity dates and CRL), as a department's
# smart-card CA would issue them:
#   staff-ca.pem           the department's staff CA (what identity.client_certificates.ca_file names)
#   crl.pem                its CRL, revoking dave
#   crl-before-dave.pem    its CRL from before dave was revoked (revoking no one)
#   alice, bob             valid; e-mail and UPN subjectAltNames (alice@dept.example, bob@dept.example)
#   carol                  expired in 2020
#   dave                   revoked
#   eve                    two e-mail addresses: names no one person
#   mallory                alice's e-mail address, issued by another CA ("Rogue CA")
# Each NAME.pem has NAME.key beside it. Usage: make_staff_certs.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_staff_certs.sh OUTDIR}
mkdir -p "$out"
cd "$out"

make_ca() {  # NAME "SUBJECT"
  mkdir -p "$1/issued"
  : > "$1/index.txt"
  echo 1000 > "$1/serial"
  echo 1000 > "$1/crlnumber"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/ca.key" -out "$1/ca.pem" \
    -days 3650 -subj "$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  cat > "$1/ca.cnf" <<CNF
[ca]
default_ca = this
[this]
dir = $PWD/$1
database = \$dir/index.txt
new_certs_dir = \$dir/issued
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
copy_extensions = copy
unique_subject = no
x509_extensions = client
[any]
commonName = supplied
organizationName = optional
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF
}

issue() {  # CA NAME "SUBJECT" SUBJECTALTNAME [extra openssl ca options...]
  local ca=$1 name=$2 subject=$3 san=$4
  shift 4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "$subject" -addext "subjectAltName=$san" 2>/dev/null
  openssl ca -batch -notext -config "$ca/ca.cnf" -in "$name.csr" -out "$name.pem" "$@" 2>/dev/null
  rm "$name.csr"
}

upn() { echo "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:$1"; }

make_ca staff "/CN=Department Staff CA/O=Department of Examples"
make_ca rogue "/CN=Rogue CA/O=Not the Department"
issue staff alice "/CN=Alice Example/O=Department of Examples" "email:alice@dept.example,$(upn alice@dept.example)"
issue staff bob "/CN=Bob Example/O=Department of Examples" "email:bob@dept.example,$(upn bob@dept.example)"
issue staff carol "/CN=Carol Example/O=Department of Examples" "email:carol@dept.example" \
  -startdate 20200101000000Z -enddate 20200201000000Z
issue staff dave "/CN=Dave Example/O=Department of Examples" "email:dave@dept.example"
issue staff eve "/CN=Eve Example/O=Department of Examples" "email:eve@dept.example,email:alice@dept.example"
issue rogue mallory "/CN=Alice Example/O=Department of Examples" "email:alice@dept.example"
openssl ca -config staff/ca.cnf -gencrl -out crl-before-dave.pem 2>/dev/null
openssl ca -config staff/ca.cnf -revoke dave.pem 2>/dev/null
openssl ca -config staff/ca.cnf -gencrl -out crl.pem 2>/dev/null
cp staff/ca.pem staff-ca.pem
