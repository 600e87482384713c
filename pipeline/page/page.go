// Package page serves the steering page at / and its login form: a single page,
// its script, style and charts embedded in the binary (no CDN, works offline),
// that reads everything from /api/v1 and its event stream.
package page

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/egov-bridge/egov-bridge/pipeline/access"
	"github.com/egov-bridge/egov-bridge/pipeline/engine"
)

//go:embed assets
var assets embed.FS

var loginTmpl = template.Must(template.ParseFS(assets, "assets/login.html"))

// Mount is the engine.Options.Mount function that serves the page.
func Mount(mux *http.ServeMux, d *engine.Daemon) {
	Register(mux, d.Access)
}

// Register adds the page's routes: / (the page; without a session, the login
// form), /login, /logout and /assets/.
func Register(mux *http.ServeMux, g *access.Guard) {
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.Handle("GET /assets/", secured(http.StripPrefix("/assets/", files)))
	mux.Handle("GET /{$}", secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := g.Authenticate(r); !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, static, "index.html")
	})))
	mux.Handle("GET /login", secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		showLogin(w, http.StatusOK, "")
	})))
	mux.Handle("POST /login", secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A login posted from another site would log the browser in as someone
		// else (login CSRF): only this site's form may post here.
		if !access.SameOrigin(r) {
			showLogin(w, http.StatusForbidden, "Yêu cầu đăng nhập không đến từ trang này.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
		token := strings.TrimSpace(r.PostFormValue("token"))
		if _, ok := g.Keys.Lookup(token); !ok {
			showLogin(w, http.StatusUnauthorized, "Mã truy cập không đúng.")
			return
		}
		access.SetSession(w, r, token)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})))
	mux.Handle("POST /logout", secured(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		access.ClearSession(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})))
}

func showLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, struct{ Error string }{msg})
}

// secured adds the headers that keep the page from being framed or fed
// scripts from elsewhere: everything it needs comes from this server.
func secured(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
