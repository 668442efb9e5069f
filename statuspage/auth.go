package statuspage

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Access to the page. With a Token, a browser logs in once through a form (POST, the token
// in the body) and gets a session cookie: EventSource cannot send an Authorization header,
// and a token in the URL (?token=) would land in access logs, browser history and Referer
// headers, so URLs carrying one are refused. The cookie is not the token: it is a signed
// expiry (HMAC with a key made at startup), HttpOnly (scripts cannot read it), SameSite=Strict
// (other sites cannot make the browser send it) and limited to Prefix, and it grants only this
// page — the API still takes the token itself.

const (
	sessionTTL = 12 * time.Hour
)

// reachable applies the rules that need no credentials: no token in the URL, a browser's
// Origin must be this host, and without a Token only loopback clients using a loopback name
// (a DNS-rebound name is refused) get in. It answers the request when it returns false.
func (h *Handler) reachable(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Query().Has("token"):
		http.Error(w, "a token in the URL leaks into logs and history: log in with the form, or send Authorization: Bearer", http.StatusBadRequest)
	case r.Header.Get("Origin") != "" && !sameHost(r.Header.Get("Origin"), r.Host):
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	case h.opts.Token == "" && !(loopbackAddr(r.RemoteAddr) && loopbackName(r.Host)):
		http.Error(w, "the status page serves loopback clients only unless it has a token", http.StatusForbidden)
	case h.opts.Token == "" && proxied(r):
		// a reverse proxy on this host connects from loopback with a loopback Host: without a
		// token, anyone it forwards would be served
		http.Error(w, "a proxied request needs a token: set the status page's Token", http.StatusForbidden)
	default:
		return true
	}
	return false
}

// authorized: no Token configured, or the bearer token, or a valid session cookie.
func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	if scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return h.tokenOK(strings.TrimSpace(tok))
	}
	c, err := r.Cookie(h.cookieName)
	return err == nil && h.sessionOK(c.Value)
}

// tokenOK compares in constant time; hashing first hides the length.
func (h *Handler) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) == 1
}

// session handles login (GET: the form; POST: the token, traded for a cookie) and logout.
func (h *Handler) session(w http.ResponseWriter, r *http.Request, which string) {
	switch {
	case which == "logout" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		// a GET ends the session too (a link, a bookmark); logging out is harmless to forge
		http.SetCookie(w, &http.Cookie{Name: h.cookieName, Path: h.opts.Prefix, MaxAge: -1, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || h.opts.SecureCookie})
		http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
		return
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		if h.authorized(r) {
			http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
			return
		}
		h.loginPage(w, r, http.StatusOK, "")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	cookie := &http.Cookie{Name: h.cookieName, Path: h.opts.Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || h.opts.SecureCookie}
	if which == "logout" {
		cookie.MaxAge = -1
		http.SetCookie(w, cookie)
		http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
		return
	}
	if h.opts.Token == "" {
		http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil || !h.tokenOK(r.PostForm.Get("token")) {
		h.opts.Logger.Warn("mlbridge status page: login refused", "remote", r.RemoteAddr)
		h.loginPage(w, r, http.StatusUnauthorized, "That is not the token of this node.")
		return
	}
	h.opts.Logger.Info("mlbridge status page: login", "remote", r.RemoteAddr)
	cookie.Value = h.newSession()
	cookie.MaxAge = int(sessionTTL / time.Second)
	http.SetCookie(w, cookie)
	http.Redirect(w, r, h.opts.Prefix, http.StatusSeeOther)
}

// newSession is "<expiry unix>.<HMAC of it>": stateless, and worthless after a restart.
func (h *Handler) newSession() string {
	exp := strconv.FormatInt(h.now().Add(sessionTTL).Unix(), 10)
	return exp + "." + h.sign(exp)
}

func (h *Handler) sessionOK(v string) bool {
	exp, sig, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(h.sign(exp))) {
		return false
	}
	unix, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && h.now().Before(time.Unix(unix, 0))
}

func (h *Handler) sign(s string) string {
	m := hmac.New(sha256.New, h.sessionKey[:])
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

func loopbackAddr(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	ip := net.ParseIP(h)
	return err == nil && ip != nil && ip.IsLoopback()
}

// loopbackName: the Host a browser on this machine sends; a page whose name was made to
// resolve to 127.0.0.1 (DNS rebinding) still sends its own.
func loopbackName(hostport string) bool {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		h = hostport
	}
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// proxied reports a request that a proxy forwarded (it says so in the standard headers).
func proxied(r *http.Request) bool {
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(k) != "" {
			return true
		}
	}
	return false
}
