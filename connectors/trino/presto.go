package trino

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	trinoclient "github.com/trinodb/trino-go-client/trino"
)

// prestoClient is the trino-go-client custom client name that speaks
// PrestoDB's protocol ("custom_client=presto" in the DSN). Sources
// register clients of their own (see Open); this shared one serves DSNs
// written by hand.
const prestoClient = "presto"

func init() {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if err := trinoclient.RegisterCustomClient(prestoClient, &http.Client{Transport: &prestoTransport{base: t}}); err != nil {
		panic(err) // a reserved name: a programming error
	}
}

var clientSeq atomic.Int64

// registerClient registers an HTTP client of one source with
// trino-go-client: its own transport lets the source close its idle
// connections when a read ends, and speaks PrestoDB's protocol for
// presto:// sources.
func registerClient(presto bool) (name string, t *http.Transport, err error) {
	t = http.DefaultTransport.(*http.Transport).Clone()
	var rt http.RoundTripper = t
	if presto {
		rt = &prestoTransport{base: t}
	}
	name = "liminal-" + strconv.FormatInt(clientSeq.Add(1), 10)
	return name, t, trinoclient.RegisterCustomClient(name, &http.Client{Transport: rt})
}

// prestoTransport lets trino-go-client talk to PrestoDB. PrestoDB's REST
// protocol is Trino's before the rename: it reads only X-Presto-* headers
// and spells the kinds of type-signature arguments LONG_LITERAL,
// TYPE_SIGNATURE and NAMED_TYPE_SIGNATURE where the client expects LONG,
// TYPE and NAMED_TYPE; a ROW field's type is a plain string there and an
// object in Trino. The transport renames request headers X-Trino-* to
// X-Presto-* (dropping X-Trino-Client-Capabilities, which would make
// PrestoDB send datetimes in a format it does not have), response headers
// back, and rewrites the "columns" of JSON responses.
type prestoTransport struct {
	base http.RoundTripper
}

const (
	trinoPrefix  = "X-Trino-"
	prestoPrefix = "X-Presto-"
)

// RoundTrip implements http.RoundTripper.
func (p *prestoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header = prestoRequestHeaders(req.Header)
	resp, err := p.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	trinoResponseHeaders(resp.Header)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if out, err := rewritePrestoJSON(body); err == nil {
		body = out
	} else {
		return nil, fmt.Errorf("presto: rewrite response: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}

func prestoRequestHeaders(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if strings.HasPrefix(ck, trinoPrefix) {
			if ck == trinoPrefix+"Client-Capabilities" {
				continue
			}
			ck = prestoPrefix + ck[len(trinoPrefix):]
		}
		out[ck] = append(out[ck], v...)
	}
	return out
}

func trinoResponseHeaders(h http.Header) {
	for k, v := range h {
		if strings.HasPrefix(k, prestoPrefix) {
			delete(h, k)
			h[trinoPrefix+k[len(prestoPrefix):]] = v
		}
	}
}

// rewritePrestoJSON rewrites the type signatures in a query response; the
// rest of the document (the data) passes through as raw JSON.
func rewritePrestoJSON(body []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return body, nil // not an object: nothing to rewrite
	}
	raw, ok := doc["columns"]
	if !ok || len(raw) == 0 || raw[0] != '[' {
		return body, nil
	}
	var cols []map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&cols); err != nil {
		return nil, err
	}
	structural := map[int]sqlType{} // columns whose values PrestoDB sends as JSON text
	for i, c := range cols {
		if typ, ok := c["type"].(string); ok {
			if t, err := parseType(typ); err == nil && (t.Base == "array" || t.Base == "map" || t.Base == "row") {
				structural[i] = t
			}
		}
		sig, ok := c["typeSignature"].(map[string]any)
		if !ok {
			if typ, ok := c["type"].(string); ok {
				t, err := parseType(typ)
				if err != nil {
					return nil, err
				}
				c["typeSignature"] = signatureOf(t)
			}
			continue
		}
		if err := rewriteSignature(sig); err != nil {
			return nil, err
		}
	}
	var err error
	if doc["columns"], err = json.Marshal(cols); err != nil {
		return nil, err
	}
	if data, ok := doc["data"]; ok && len(structural) > 0 {
		if doc["data"], err = decodeStructural(data, structural); err != nil {
			return nil, err
		}
	}
	return json.Marshal(doc)
}

// decodeStructural replaces the JSON text PrestoDB sends for ARRAY, MAP
// and ROW values (e.g. "[ 1, \"x\" ]", nested ones again as text inside)
// by the JSON itself, the shape Trino sends and trino-go-client decodes.
func decodeStructural(data json.RawMessage, cols map[int]sqlType) (json.RawMessage, error) {
	var rows [][]json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	for _, row := range rows {
		for c, t := range cols {
			if c >= len(row) || len(row[c]) == 0 || row[c][0] != '"' {
				continue
			}
			v, err := decodeJSON(row[c])
			if err != nil {
				return nil, err
			}
			if v, err = unnestText(t, v); err != nil {
				return nil, fmt.Errorf("column %d: %w", c, err)
			}
			if row[c], err = json.Marshal(v); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(rows)
}

func decodeJSON(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// unnestText decodes v, and the structural values inside it, where they
// are JSON text.
func unnestText(t sqlType, v any) (any, error) {
	if t.Base != "array" && t.Base != "map" && t.Base != "row" {
		return v, nil
	}
	if s, ok := v.(string); ok {
		var err error
		if v, err = decodeJSON([]byte(s)); err != nil {
			return nil, fmt.Errorf("%s value %q: %w", t, s, err)
		}
	}
	var err error
	switch x := v.(type) {
	case []any:
		for i := range x {
			et := t.Elems[0]
			if t.Base == "row" {
				if i >= len(t.Elems) {
					return nil, fmt.Errorf("row value has more fields than %s", t)
				}
				et = t.Elems[i]
			}
			if x[i], err = unnestText(et, x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		if t.Base != "map" {
			return nil, fmt.Errorf("object for %s", t)
		}
		for k := range x {
			if x[k], err = unnestText(t.Elems[1], x[k]); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// prestoKinds maps PrestoDB's argument kinds to Trino's.
var prestoKinds = map[string]string{
	"LONG_LITERAL":         "LONG",
	"TYPE_SIGNATURE":       "TYPE",
	"NAMED_TYPE_SIGNATURE": "NAMED_TYPE",
	"LONG":                 "LONG",
	"TYPE":                 "TYPE",
	"NAMED_TYPE":           "NAMED_TYPE",
}

// rewriteSignature rewrites one ClientTypeSignature object in place.
// Arguments of kinds the client does not know (PrestoDB's enum and
// distinct types, VARIABLE) are dropped: the column is then read by its
// raw type name alone.
func rewriteSignature(sig map[string]any) error {
	args, _ := sig["arguments"].([]any)
	out := make([]any, 0, len(args))
	for _, a := range args {
		arg, ok := a.(map[string]any)
		if !ok {
			continue
		}
		kind, _ := arg["kind"].(string)
		tk, ok := prestoKinds[kind]
		if !ok {
			continue
		}
		arg["kind"] = tk
		switch tk {
		case "TYPE":
			switch v := arg["value"].(type) {
			case map[string]any:
				if err := rewriteSignature(v); err != nil {
					return err
				}
			case string:
				t, err := parseType(v)
				if err != nil {
					return err
				}
				arg["value"] = signatureOf(t)
			default:
				return fmt.Errorf("type argument %v", arg["value"])
			}
		case "NAMED_TYPE":
			nv, ok := arg["value"].(map[string]any)
			if !ok {
				return fmt.Errorf("named type argument %v", arg["value"])
			}
			// PrestoDB prints a field's type as text, Trino as an object.
			switch ts := nv["typeSignature"].(type) {
			case string:
				t, err := parseType(ts)
				if err != nil {
					return err
				}
				nv["typeSignature"] = signatureOf(t)
			case map[string]any:
				if err := rewriteSignature(ts); err != nil {
					return err
				}
			}
			if fn, ok := nv["fieldName"].(map[string]any); ok {
				nv["fieldName"] = map[string]any{"name": fn["name"]}
			}
		}
		out = append(out, arg)
	}
	sig["arguments"] = out
	delete(sig, "typeArguments")
	delete(sig, "literalArguments")
	return nil
}

// signatureOf builds Trino's ClientTypeSignature JSON for t.
func signatureOf(t sqlType) map[string]any {
	args := []any{}
	switch t.Base {
	case "array", "map":
		for _, e := range t.Elems {
			args = append(args, map[string]any{"kind": "TYPE", "value": signatureOf(e)})
		}
	case "row":
		for i, e := range t.Elems {
			nv := map[string]any{"typeSignature": signatureOf(e)}
			if t.Names[i] != "" {
				nv["fieldName"] = map[string]any{"name": t.Names[i]}
			}
			args = append(args, map[string]any{"kind": "NAMED_TYPE", "value": nv})
		}
	default:
		for _, p := range t.Params {
			args = append(args, map[string]any{"kind": "LONG", "value": p})
		}
	}
	return map[string]any{"rawType": t.Base, "arguments": args}
}
