package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// nodeBase turns an --addr (host:port, or a URL such as https://host:port) into a base URL.
func nodeBase(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
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
