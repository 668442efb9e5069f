package statuspage

import (
	"encoding/json"
	"net/http"
	"time"
)

// writeTimeout bounds one event's write.
const writeTimeout = 5 * time.Second

// events streams the node's status (mlbridge.NodeStatus as JSON) as server-sent events: one
// snapshot at once, then one every Interval, until the client goes.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	select {
	case <-h.stop:
		http.Error(w, "the status page is closed", http.StatusServiceUnavailable)
		return
	default:
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the stream back
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// The page reconnects after a second if the stream breaks (the node restarted, say).
	if _, err := w.Write([]byte("retry: 1000\n\n")); err != nil {
		return
	}
	t := time.NewTicker(h.opts.Interval)
	defer t.Stop()
	for {
		if !h.authorized(r) {
			return // the session expired while the stream was open: the page logs in again
		}
		// a client that stops reading must not pin this goroutine (and serve's shutdown)
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := h.send(w, rc); err != nil {
			return // the client went
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.stop:
			return
		case <-t.C:
		}
	}
}

// send writes one snapshot event; JSON has no raw newlines, so one data line holds it.
func (h *Handler) send(w http.ResponseWriter, rc *http.ResponseController) error {
	data, err := json.Marshal(h.status())
	if err != nil {
		h.opts.Logger.Warn("mlbridge status page: encoding the status", "err", err)
		return err
	}
	buf := make([]byte, 0, len(data)+32)
	buf = append(buf, "event: status\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	return rc.Flush()
}
