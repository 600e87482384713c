package announce

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"unicode"
)

// Content is what an announcement says: its own text or an approved template
// filled from data, an optional link (a button) and an optional image (a banner).
type Content struct {
	Text     string            `json:"text,omitempty"`
	Template string            `json:"template,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
	Link     string            `json:"link,omitempty"`
	Image    string            `json:"image,omitempty"`
}

// Message is an announcement as the citizen receives it; the zalo connector
// builds its requests from it, and previews show it, so both say the same.
type Message struct {
	ID    string // "ann-<id>": the key of the send records
	Title string
	Text  string
	Link  string
	Image string
	// ZNSTemplateID and TemplateData (parameter -> value) reach citizens who do
	// not follow the OA, by phone; empty when the announcement has no ZNS template.
	ZNSTemplateID string
	TemplateData  map[string]string
}

// LinkTitle is the button's caption.
const LinkTitle = "Xem chi tiết"

// MaxParagraph is the longest text element of a promotion message; a longer text
// is split at sentence or word boundaries into several elements of one message.
const MaxParagraph = 1000

// Paragraphs splits the text into the promotion message's text elements.
func (m Message) Paragraphs() []string { return split(strings.TrimSpace(m.Text), MaxParagraph) }

// Elements is the promotion message's payload elements, in order: banner, header,
// text.
func (m Message) Elements() []map[string]any {
	var el []map[string]any
	if m.Image != "" {
		el = append(el, map[string]any{"type": "banner", "image_url": m.Image})
	}
	el = append(el, map[string]any{"type": "header", "content": m.Title, "align": "left"})
	for _, p := range m.Paragraphs() {
		el = append(el, map[string]any{"type": "text", "content": p, "align": "left"})
	}
	return el
}

// Buttons is the promotion message's buttons: the link, if any.
func (m Message) Buttons() []map[string]any {
	if m.Link == "" {
		return nil
	}
	return []map[string]any{{"title": LinkTitle, "type": "oa.open.url", "payload": map[string]string{"url": m.Link}}}
}

// Render is the message as plain text, as a citizen reads it in Zalo.
func (m Message) Render() string {
	var b strings.Builder
	if m.Image != "" {
		fmt.Fprintf(&b, "[ảnh] %s\n", m.Image)
	}
	b.WriteString(m.Title)
	b.WriteString("\n\n")
	b.WriteString(strings.Join(m.Paragraphs(), "\n\n"))
	if m.Link != "" {
		fmt.Fprintf(&b, "\n\n[%s] %s", LinkTitle, m.Link)
	}
	return b.String()
}

// split cuts text into pieces of at most n characters, at a sentence end, else a
// space, else anywhere.
func split(text string, n int) []string {
	var out []string
	r := []rune(text)
	for len(r) > n {
		cut := -1
		for i := n; i > n/2; i-- {
			if (r[i-1] == '.' || r[i-1] == '!' || r[i-1] == '?' || r[i-1] == '\n') && unicode.IsSpace(r[i]) {
				cut = i
				break
			}
		}
		if cut < 0 {
			for i := n; i > n/2; i-- {
				if unicode.IsSpace(r[i]) {
					cut = i
					break
				}
			}
		}
		if cut < 0 {
			cut = n
		}
		out = append(out, strings.TrimSpace(string(r[:cut])))
		r = []rune(strings.TrimSpace(string(r[cut:])))
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(text)
}

// message renders an announcement's content into what citizens receive.
func (r *Regulation) message(id int64, title string, c Content) (Message, error) {
	m := Message{ID: fmt.Sprintf("ann-%d", id), Title: strings.TrimSpace(title), Link: c.Link, Image: c.Image}
	if c.Template == "" {
		m.Text = strings.TrimSpace(c.Text)
		return m, nil
	}
	t, ok := r.Templates[c.Template]
	if !ok {
		return Message{}, fmt.Errorf("template: the regulation has no template %q (has: %s)", c.Template, strings.Join(sortedKeys(r.Templates), ", "))
	}
	tt, err := parseTemplate(c.Template, t.Text)
	if err != nil {
		return Message{}, fmt.Errorf("template %s: %w", c.Template, err)
	}
	var b bytes.Buffer
	data := map[string]string{}
	for k, v := range c.Data {
		data[k] = v
	}
	if err := tt.Execute(&b, data); err != nil {
		return Message{}, fmt.Errorf("template %s: %w", c.Template, err)
	}
	m.Text = strings.TrimSpace(b.String())
	if m.Title == "" {
		m.Title = t.Title
	}
	if t.ZNSTemplateID != "" {
		m.ZNSTemplateID = t.ZNSTemplateID
		m.TemplateData = map[string]string{}
		for param, from := range t.TemplateData {
			switch from {
			case "$title":
				m.TemplateData[param] = m.Title
			case "$text":
				m.TemplateData[param] = m.Text
			case "$link":
				m.TemplateData[param] = m.Link
			default:
				m.TemplateData[param] = data[from]
			}
		}
	}
	return m, nil
}

// checkMessage reports what makes a message unsendable.
func checkMessage(m Message) error {
	switch {
	case m.Title == "":
		return fmt.Errorf("title: an announcement needs a title")
	case len([]rune(m.Title)) > MaxTitle:
		return fmt.Errorf("title: %d characters, at most %d", len([]rune(m.Title)), MaxTitle)
	case m.Text == "":
		return fmt.Errorf("text: an announcement needs a text or a template")
	case len([]rune(m.Text)) > MaxText:
		return fmt.Errorf("text: %d characters, at most %d", len([]rune(m.Text)), MaxText)
	}
	for _, f := range []struct{ name, v string }{{"link", m.Link}, {"image", m.Image}} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("%s: want an https:// address, got %q", f.name, f.v)
		}
	}
	return nil
}
