package webhook_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/egov-bridge/egov-bridge/connectors/webhook"
	"github.com/egov-bridge/egov-bridge/pipeline"
)

// A receiver verifies the signature on the raw body, then stores the event under
// its Idempotency-Key, answering 2xx for a key it already has.
func ExampleVerify() {
	secret := "the shared secret"
	var mu sync.Mutex
	seen := map[string]bool{} // in a real receiver: a unique key in its database

	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		err = webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute)
		if errors.Is(err, webhook.ErrSignatureFormat) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		if seen[key] {
			w.WriteHeader(http.StatusOK) // a redelivery: already stored
			return
		}
		var ev pipeline.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity) // dead-lettered, with this reason
			return
		}
		seen[key] = true
		w.WriteHeader(http.StatusNoContent)
	})
	_ = http.ListenAndServe("127.0.0.1:8443", mux)
}

func ExampleSign() {
	at := time.Unix(1795000000, 0)
	fmt.Println(webhook.Sign("whsec-example", at, []byte(`{"id":"abc"}`)))
	// Output: t=1795000000,v1=189654f6c74d1c95c48c9164aa31951afda0b1f0679251fc9a56a5106afc7299
}
