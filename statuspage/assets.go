package statuspage

import (
	"bytes"
	"embed"
	"html/template"
	"mime"
	"net/http"
	"path"
	"time"
)

// The page is plain files, embedded: no build step, nothing fetched from elsewhere.
//
//go:embed assets
var assetFS embed.FS

// asset is one embedded file, read once.
type asset struct {
	name  string
	data  []byte
	ctype string
}

// assets are the files served by name under Prefix; index.html is served at Prefix itself.
var assets = loadAssets("index.html", "app.js", "style.css")

var loginTmpl = template.Must(template.ParseFS(assetFS, "assets/login.html"))

func loadAssets(names ...string) map[string]asset {
	m := map[string]asset{}
	for _, n := range names {
		data, err := assetFS.ReadFile("assets/" + n)
		if err != nil {
			panic(err) // the embed directive guarantees them
		}
		m[n] = asset{name: n, data: data, ctype: mime.TypeByExtension(path.Ext(n))}
	}
	return m
}

func (a asset) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Cache-Control", "no-cache") // revalidate: a new version shows at once
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}

// loginPage answers with the login form; msg says why it is shown again.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_ = loginTmpl.Execute(w, struct{ Message string }{msg})
}
