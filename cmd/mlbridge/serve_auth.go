package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// tokenEnv holds the bearer token of 'mlbridge serve' and of the commands that call it, when
// no --token-file is given.
const tokenEnv = "MLBRIDGE_TOKEN"

// minTokenLen keeps guessable tokens out: `openssl rand -hex 32` makes a good one.
const minTokenLen = 16

// loadToken returns the token in file, else $MLBRIDGE_TOKEN, else "" (none).
func loadToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(tokenEnv)), nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// warnIfShared logs when a token file can be read by other users of the machine.
func warnIfShared(log *slog.Logger, file string) {
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the token file is readable by other users; chmod 600 it", "file", file, "mode", fi.Mode().Perm())
	}
}

// access is serve's request filter, in front of every endpoint but /v1/healthz. Without a
// token (loopback only) the Host, Origin and Content-Type rules are what stops a web page
// from running ops: a browser lets any page send a "simple" cross-origin POST (text/plain, no
// preflight) to 127.0.0.1, and DNS rebinding lets it read the answers under its own name.
type access struct {
	tokenSum [sha256.Size]byte
	token    bool
	hosts    map[string]bool // names besides loopback ones that clients reach this node by
	scheme   string          // "http" or "https"
}

func newAccess(token string, hosts map[string]bool, tls bool) *access {
	a := &access{hosts: hosts, scheme: "http"}
	if token != "" {
		a.token, a.tokenSum = true, sha256.Sum256([]byte(token))
	}
	if tls {
		a.scheme = "https"
	}
	return a
}

// guard applies the Host and Origin rules only: the status page checks the token itself (a
// browser's EventSource sends a session cookie, not an Authorization header).
func (a *access) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.nodeRequest(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// nodeRequest reports whether r names this node and comes from no other site's page; it
// answers r when it returns false.
func (a *access) nodeRequest(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case !a.hostAllowed(r.Host):
		denied(w, http.StatusForbidden, fmt.Sprintf("Host %q is not a name of this node (a loopback name, the --addr host or an --allowed-host)", r.Host))
	case r.Header.Get("Origin") != "" && !a.sameOrigin(r.Header.Get("Origin"), r.Host):
		denied(w, http.StatusForbidden, fmt.Sprintf("cross-origin request from %q refused", r.Header.Get("Origin")))
	default:
		return true
	}
	return false
}

func (a *access) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case !a.nodeRequest(w, r): // answered
		case a.token && !a.authorized(r):
			w.Header().Set("WWW-Authenticate", `Bearer realm="mlbridge"`)
			denied(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer <token>; the token of 'mlbridge serve', from --token-file or $"+tokenEnv+")")
		case r.Method != http.MethodGet && r.Method != http.MethodHead && !isJSON(r.Header.Get("Content-Type")):
			denied(w, http.StatusUnsupportedMediaType, "calls take Content-Type: application/json")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func denied(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// authorized compares the bearer token in constant time; hashing both sides first keeps the
// comparison from ending early on a length difference.
func (a *access) authorized(r *http.Request) bool {
	// The scheme name is case-insensitive (RFC 7235): "bearer x" is as good as "Bearer x".
	scheme, got, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// hostAllowed is the DNS-rebinding defense: a page whose name was made to point at 127.0.0.1
// still sends its own name as Host.
func (a *access) hostAllowed(hostport string) bool {
	h := hostName(hostport)
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return a.hosts[h]
}

// sameOrigin: an Origin header (sent by browsers) must name this node as it was reached.
func (a *access) sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Scheme == a.scheme && u.Host != "" && strings.EqualFold(u.Host, host)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// hostName returns the lower-case host of a host[:port], without brackets or a final dot.
func hostName(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = strings.Trim(hostport, "[]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// nodeHosts lists the names clients may use for a node listening on addr (besides loopback
// ones): the --addr host, or for a wildcard address the machine's name and addresses; then
// extra (--allowed-host).
func nodeHosts(addr string, extra []string) map[string]bool {
	hosts := map[string]bool{}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			hosts[hostName(name)] = true
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					hosts[n.IP.String()] = true
				}
			}
		}
	} else {
		hosts[hostName(host)] = true
	}
	for _, h := range extra {
		hosts[hostName(h)] = true
	}
	return hosts
}

// isLoopback reports whether a listener accepts connections from this machine only.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
