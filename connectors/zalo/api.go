package zalo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"golang.org/x/time/rate"

	"github.com/egov-bridge/egov-bridge/pipeline"
)

// Paths under the configured base URLs.
const (
	pathToken       = "/v4/oa/access_token"
	pathText        = "/v3.0/oa/message/cs"
	pathTransaction = "/v3.0/oa/message/transaction"
	pathZNS         = "/message/template"
)

// Class says what an error code from Zalo means for a notice.
type Class int

const (
	ClassUnknown   Class = iota // transient; logged with its code
	ClassToken                  // the access token is invalid or expired: refresh once, retry
	ClassRate                   // a rate or quota limit: back off
	ClassRecipient              // this route cannot reach this citizen: try the next route
	ClassBadInput               // the request itself is wrong: dead letter with Zalo's message
)

func (c Class) String() string {
	return [...]string{"unknown", "token", "rate", "recipient", "bad_input"}[c]
}

// Error codes Zalo answers with (docs/decisions/0013-zalo-api.md says where each
// comes from and how sure it is).
const (
	CodeNight = -133 // ZNS outside the sending window (22:00-06:00)
)

var codeClasses = map[int]Class{
	-216: ClassToken, -220: ClassToken, -124: ClassToken,
	-32: ClassRate, -211: ClassRate, -144: ClassRate, CodeNight: ClassRate,
	-213: ClassRecipient, -230: ClassRecipient, -232: ClassRecipient, -227: ClassRecipient,
	-244: ClassRecipient, -218: ClassRecipient, -217: ClassRecipient,
	-201: ClassBadInput, -210: ClassBadInput, -233: ClassBadInput, -100: ClassBadInput,
}

// ClassOf returns the class of a Zalo error code.
func ClassOf(code int) Class { return codeClasses[code] }

// APIError is an answer with error != 0 (Zalo says so inside HTTP 200).
type APIError struct {
	Code    int
	Message string // Zalo's own words; kept out of log lines (it may echo input)
	Class   Class
	Path    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("zalo %s: error %d (%s)", e.Path, e.Code, e.Class)
}

// rateWait is how long a rate or quota code makes a notice wait.
func rateWait(code int) time.Duration {
	switch code {
	case -32: // calls per minute
		return time.Minute
	default: // a quota: try again later in the day
		return time.Hour
	}
}

// OAuthError is an answer of the OAuth server that refuses the refresh (it may
// come with HTTP 200).
type OAuthError struct {
	Code        int
	Name        string
	Description string
}

func (e *OAuthError) Error() string {
	msg := "zalo oauth refused the refresh"
	switch {
	case e.Code != 0 && e.Name != "":
		msg += fmt.Sprintf(": error %d (%s)", e.Code, e.Name)
	case e.Code != 0:
		msg += fmt.Sprintf(": error %d", e.Code)
	case e.Name != "":
		msg += ": " + e.Name
	}
	return msg
}

// sendResult is what a successful send answers.
type sendResult struct {
	MessageID string
	QuotaType string
}

// tokenPair is what a successful refresh answers.
type tokenPair struct {
	Access    string
	Refresh   string
	ExpiresIn time.Duration
}

// api talks HTTP to Zalo; it never retries (the dispatcher does) and never puts
// a token or the secret key into an error.
type api struct {
	client                  *resty.Client
	oauthURL, oaURL, znsURL string
	appID, secretKey        string
	limit                   *rate.Limiter
	timeout                 time.Duration
}

func newAPI(o Options) *api {
	perMin := o.RatePerMinute
	if perMin == 0 {
		perMin = DefaultRatePerMinute
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &api{
		client: resty.NewWithClient(hc).SetRetryCount(0).SetHeader("User-Agent", "egov-bridge").
			SetResponseBodyLimit(1 << 20).SetLogger(quietLogger{}), // resty's own lines could quote requests
		oauthURL: strings.TrimRight(o.OAuthURL, "/"), oaURL: strings.TrimRight(o.OAURL, "/"),
		znsURL: strings.TrimRight(o.ZNSURL, "/"), appID: o.AppID, secretKey: o.SecretKey,
		limit:   rate.NewLimiter(rate.Limit(float64(perMin)/60), max(1, perMin/60)),
		timeout: o.Timeout.D(),
	}
}

// refresh trades a refresh token for a new pair. An answer without an access
// token, or with an error, is an *OAuthError whatever the HTTP status below 500.
func (a *api) refresh(ctx context.Context, refreshToken string) (tokenPair, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.client.R().SetContext(ctx).
		SetHeader("secret_key", a.secretKey).
		SetFormData(map[string]string{"refresh_token": refreshToken, "app_id": a.appID, "grant_type": "refresh_token"}).
		Post(a.oauthURL + pathToken)
	if err != nil {
		return tokenPair{}, requestError("oauth", err)
	}
	if code := resp.StatusCode(); code >= 500 || code == http.StatusTooManyRequests {
		return tokenPair{}, fmt.Errorf("zalo oauth: HTTP %d", code)
	}
	var body struct {
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
		Error        int             `json:"error"`
		ErrorName    string          `json:"error_name"`
		ErrorDesc    string          `json:"error_description"`
	}
	if err := json.Unmarshal(resp.Body(), &body); err != nil {
		// Not Zalo's JSON (a proxy's page?): nothing says the token was refused.
		return tokenPair{}, fmt.Errorf("zalo oauth: HTTP %d, unreadable answer: %w", resp.StatusCode(), err)
	}
	if body.Error != 0 || body.ErrorName != "" || body.AccessToken == "" || body.RefreshToken == "" {
		return tokenPair{}, &OAuthError{Code: body.Error, Name: body.ErrorName, Description: body.ErrorDesc}
	}
	return tokenPair{Access: body.AccessToken, Refresh: body.RefreshToken, ExpiresIn: expiresIn(body.ExpiresIn)}, nil
}

// expiresIn reads Zalo's expires_in, a string of seconds ("90000") or a number;
// 25 hours when it cannot be read.
func expiresIn(raw json.RawMessage) time.Duration {
	s := strings.Trim(string(raw), `"`)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 25 * time.Hour
}

// send posts a JSON body with an access token and reads Zalo's answer.
func (a *api) send(ctx context.Context, base, path, accessToken string, body any) (sendResult, error) {
	if err := a.limit.Wait(ctx); err != nil {
		return sendResult{}, fmt.Errorf("zalo %s: waiting for the rate limit: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.client.R().SetContext(ctx).
		SetHeader("access_token", accessToken).
		SetHeader("Content-Type", "application/json").
		SetBody(body).
		Post(base + path)
	if err != nil {
		return sendResult{}, requestError(path, err)
	}
	if code := resp.StatusCode(); code != http.StatusOK {
		err := fmt.Errorf("zalo %s: HTTP %d", path, code)
		if secs, perr := strconv.Atoi(resp.Header().Get("Retry-After")); perr == nil && secs > 0 {
			return sendResult{}, pipeline.RetryAfter(err, min(time.Duration(secs)*time.Second, time.Hour))
		}
		return sendResult{}, err
	}
	var ans struct {
		Error   int    `json:"error"`
		Message string `json:"message"`
		Data    struct {
			MessageID string `json:"message_id"`
			MsgID     string `json:"msg_id"`
			QuotaType string `json:"quota_type"`
			Quota     struct {
				QuotaType string `json:"quota_type"`
			} `json:"quota"`
		} `json:"data"`
	}
	if err := json.Unmarshal(resp.Body(), &ans); err != nil {
		return sendResult{}, fmt.Errorf("zalo %s: unreadable answer: %w", path, err)
	}
	if ans.Error != 0 {
		return sendResult{}, &APIError{Code: ans.Error, Message: ans.Message, Class: ClassOf(ans.Error), Path: path}
	}
	id := ans.Data.MessageID
	if id == "" {
		id = ans.Data.MsgID
	}
	qt := ans.Data.QuotaType
	if qt == "" {
		qt = ans.Data.Quota.QuotaType
	}
	return sendResult{MessageID: id, QuotaType: qt}, nil
}

// requestError explains a call that got no answer; it is transient. url.Error
// quotes the URL, which carries no secret here, but is trimmed all the same.
func requestError(what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("zalo %s: %w", what, err)
}

// quietLogger drops resty's own log lines; the sink reports errors itself.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Debugf(string, ...any) {}
