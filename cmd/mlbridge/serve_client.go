package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// nodeClient is how CLI commands read a running 'mlbridge serve' (or a mounted NodeHandler):
// with the bearer token serve may require, and the CA of a serve on HTTPS.
type nodeClient struct {
	tokenFile string
	caFile    string
}

func (c *nodeClient) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.tokenFile, "token-file", "", "file holding the node's bearer token (default: $"+tokenEnv+")")
	fs.StringVar(&c.caFile, "tls-ca", "", "PEM certificate(s) to trust for an https:// node (default: the system's)")
}

// parseNode reads the address of a node given to --addr or --node (flag names it in errors):
// host:port means http://host:port; http:// and https:// URLs are taken as they are. A missing
// host (":7420") is this machine's loopback.
func parseNode(flag, addr string) (*url.URL, error) {
	raw := strings.TrimSpace(addr)
	if raw == "" {
		return nil, fmt.Errorf("--%s is empty: give host:port, http://host:port or https://host:port", flag)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err == nil && u.Scheme != "http" && u.Scheme != "https" {
		err = fmt.Errorf("scheme %q is neither http nor https", u.Scheme)
	}
	if err == nil && u.Host == "" {
		err = errors.New("no host")
	}
	if err != nil {
		return nil, fmt.Errorf("--%s %q: %v (give host:port, http://host:port or https://host:port)", flag, addr, err)
	}
	if u.Hostname() == "" {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
	}
	return u, nil
}

// nodeURL is the URL of endpoint (/v1/status, /v1/node) on the node at addr (see parseNode);
// a URL with a path names the endpoint itself (a NodeHandler mounted elsewhere, a proxy).
func nodeURL(flag, addr, endpoint string) (string, error) {
	u, err := parseNode(flag, addr)
	if err != nil {
		return "", err
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawPath = endpoint, ""
	}
	return u.String(), nil
}

// get reads one JSON document from a node's endpoint.
func (c *nodeClient) get(ctx context.Context, url string) ([]byte, error) {
	token, err := loadToken(c.tokenFile)
	if err != nil {
		return nil, err
	}
	client, err := c.httpClient()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("no mlbridge node at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body)
		err := fmt.Errorf("node %s answered %s", url, resp.Status)
		if body.Error != "" {
			err = fmt.Errorf("%w: %s", err, body.Error)
		}
		if resp.StatusCode == http.StatusUnauthorized && token == "" {
			err = fmt.Errorf("%w (the node wants a token: set $%s or --token-file)", err, tokenEnv)
		}
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

func (c *nodeClient) httpClient() (*http.Client, error) {
	if c.caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}, nil
}
