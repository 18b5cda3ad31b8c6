package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"
)

func TestCertificatesVerifyAgainstTheCA(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM does not parse")
	}
	tests := []struct {
		name     string
		issue    func() ([]byte, []byte, error)
		usage    x509.ExtKeyUsage
		dnsName  string // for serving certificates
		wantCN   string
		wantOrgs []string
	}{
		{
			name:    "serving by IP and DNS",
			issue:   func() ([]byte, []byte, error) { return ca.IssueServing("", []string{"127.0.0.1", "node-1"}) },
			usage:   x509.ExtKeyUsageServerAuth,
			dnsName: "node-1",
			wantCN:  "127.0.0.1",
		},
		{
			name:     "client with groups",
			issue:    func() ([]byte, []byte, error) { return ca.IssueClient("system:node:n1", []string{"system:nodes"}) },
			usage:    x509.ExtKeyUsageClientAuth,
			wantCN:   "system:node:n1",
			wantOrgs: []string{"system:nodes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := tt.issue()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatalf("certificate and key do not pair: %v", err)
			}
			block, _ := pem.Decode(certPEM)
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.dnsName, KeyUsages: []x509.ExtKeyUsage{tt.usage}}); err != nil {
				t.Errorf("does not verify: %v", err)
			}
			if cert.Subject.CommonName != tt.wantCN || !slices.Equal(cert.Subject.Organization, tt.wantOrgs) {
				t.Errorf("subject = %v, want CN=%s O=%v", cert.Subject, tt.wantCN, tt.wantOrgs)
			}
		})
	}
	if _, _, err := ca.IssueServing("x", nil); err == nil {
		t.Error("serving certificate without hosts accepted")
	}
	if _, _, err := ca.IssueClient("", nil); err == nil {
		t.Error("client certificate without a user name accepted")
	}
}

func TestServiceAccountKeyPair(t *testing.T) {
	pubPEM, privPEM, err := NewServiceAccountKey()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(privPEM)
	priv, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(pub.(*ecdsa.PublicKey)) {
		t.Error("public key does not belong to the private key")
	}
}

// An expired client certificate still chains to the CA, but fails
// verification at the current time: what an apiserver sees from a stale
// kubeconfig.
func TestIssueClientUntilExpired(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueClientUntil("late", nil, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotBefore.Before(cert.NotAfter) || !cert.NotAfter.Before(time.Now()) {
		t.Fatalf("validity %s - %s, want an expired certificate", cert.NotBefore, cert.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err == nil {
		t.Fatal("an expired certificate verified")
	}
	opts.CurrentTime = cert.NotAfter
	if _, err := cert.Verify(opts); err != nil {
		t.Fatalf("within its validity: %v", err)
	}
}
