// Package statuspage serves a live status page of mlbridge bridges: each bridge's workers,
// queue, per-op latency and errors, recent call errors and migration progress, refreshed
// by server-sent events from mlbridge.Status. `mlbridge serve` serves it at /; a service
// mounts it beside its own admin endpoints:
//
//	mux.Handle("/mlbridge/", statuspage.New(statuspage.Options{Prefix: "/mlbridge/", Token: tok}, registry))
//
// Access: with a Token, every request needs it (a session cookie from the page's login form,
// or "Authorization: Bearer"); without one, only loopback clients reaching it by a loopback
// name are served. The page is read-only by default (see Options.ReadWrite).
package statuspage

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mlbridge/mlbridge"
)

// Options configure a status page. The zero value serves at / to loopback clients, read-only,
// refreshing every second.
type Options struct {
	// Prefix is the path the handler is mounted at, beginning and ending with "/" (default
	// "/"). The handler serves only paths under it; mount it there, without StripPrefix.
	Prefix string
	// Token, when set, is required: the same token as `mlbridge serve`'s API. Browsers trade
	// it once for a session cookie through the page's login form (EventSource cannot send an
	// Authorization header); scripts may send "Authorization: Bearer <token>". Without a
	// Token only loopback clients are served: set one when a proxy forwards to this handler.
	Token string
	// ReadWrite turns off read-only mode. Read-only (the default) refuses every method but
	// GET and HEAD (the login form's POST aside), and any action the page may gain. The page
	// has no actions today, so ReadWrite allows nothing more yet: it is the switch a future
	// action (say, recycling a worker) will require, so that none is ever on by default.
	ReadWrite bool
	// Interval is how often the event stream sends a snapshot (default and maximum 1 s).
	Interval time.Duration
	// SecureCookie marks the session cookie Secure even when the request did not arrive over
	// TLS here (a proxy terminates it). Requests over TLS get a Secure cookie anyway.
	SecureCookie bool
	// Logger receives login outcomes and stream errors (never the token). Default: discard.
	Logger *slog.Logger
}

// maxInterval is the slowest refresh the page promises.
const maxInterval = time.Second

// Handler is a status page. It is safe for concurrent use.
type Handler struct {
	opts       Options
	status     func() mlbridge.NodeStatus
	tokenSum   [sha256.Size]byte
	sessionKey [32]byte // signs session cookies; fresh per Handler, so a restart logs everyone out
	cookieName string   // the session cookie's name, derived from sessionKey
	now        func() time.Time
	stop       chan struct{} // closed by Close: ends the event streams
	stopOnce   sync.Once
}

// New returns the status page of sources (a *mlbridge.Registry, mlbridge.Named pools, ...),
// read with mlbridge.Status. It panics if opts.Prefix does not begin and end with "/".
func New(opts Options, sources ...mlbridge.NodeSource) *Handler {
	return newHandler(opts, func() mlbridge.NodeStatus { return mlbridge.Status(sources...) })
}

func newHandler(opts Options, status func() mlbridge.NodeStatus) *Handler {
	if opts.Prefix == "" {
		opts.Prefix = "/"
	}
	if !strings.HasPrefix(opts.Prefix, "/") || !strings.HasSuffix(opts.Prefix, "/") {
		panic(fmt.Sprintf("statuspage: Prefix %q must begin and end with /", opts.Prefix))
	}
	if opts.Interval <= 0 || opts.Interval > maxInterval {
		opts.Interval = maxInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &Handler{opts: opts, status: status, now: time.Now, stop: make(chan struct{})}
	if opts.Token != "" {
		h.tokenSum = sha256.Sum256([]byte(opts.Token))
	}
	if _, err := rand.Read(h.sessionKey[:]); err != nil {
		panic("statuspage: no randomness for session keys: " + err.Error())
	}
	// Browsers keep cookies per host, not per port: two nodes on one machine would overwrite
	// each other's session under one name. The name is this handler's own.
	id := sha256.Sum256(h.sessionKey[:])
	h.cookieName = "mlbridge_status_" + hex.EncodeToString(id[:4])
	return h
}

// Close ends the open event streams, and refuses new ones: http.Server.Shutdown waits for
// active connections, and a stream never ends on its own. Register it with
// srv.RegisterOnShutdown(page.Close). Browsers reconnect to whatever serves next.
func (h *Handler) Close() {
	h.stopOnce.Do(func() { close(h.stop) })
}

// ServeHTTP routes a request under Prefix, after the access rules (auth.go).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	if r.URL.Path+"/" == h.opts.Prefix {
		http.Redirect(w, r, h.opts.Prefix, http.StatusMovedPermanently)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.opts.Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !h.reachable(w, r) {
		return
	}
	if rest == "login" || rest == "logout" {
		h.session(w, r, rest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.action(w, r, rest)
		return
	}
	if a, ok := assets[rest]; ok { // static, public: the login page uses them
		a.serve(w, r)
		return
	}
	if rest != "" && rest != "events" {
		http.NotFound(w, r)
		return
	}
	if !h.authorized(r) {
		h.loginPage(w, r, http.StatusUnauthorized, "")
		return
	}
	if rest == "events" {
		h.events(w, r)
		return
	}
	assets["index.html"].serve(w, r)
}

// action answers every method but GET and HEAD. Read-only refuses all of them; otherwise the
// page has no actions yet.
func (h *Handler) action(w http.ResponseWriter, r *http.Request, rest string) {
	if !h.opts.ReadWrite {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the status page is read-only", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(r) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	http.Error(w, fmt.Sprintf("no action %q: the status page has none yet", rest), http.StatusNotFound)
}

// setSecurityHeaders: the page loads nothing from elsewhere, runs no inline script, and may
// not be framed (clickjacking a future action) or leak its URL.
func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the
	// login form, which the Origin check must refuse.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
}
