package load

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// The ObjectMeta rules that need Go (M4, M6, M7, M8, M9) and the label-map
// rule of spec.selector (S14). Like the API server, label and annotation
// errors are reported on the map (metadata.labels, spec.selector,
// metadata.annotations), not on the key; the position is the key's value.

// Messages of the name and label rules, shared with the schema's wording.
const (
	msgDNSLabel = "must be a lowercase RFC 1123 label: at most 63 characters, a-z, 0-9 and '-', starting and ending with a letter or digit"
	msgDNSSub   = "must be a lowercase RFC 1123 subdomain: at most 253 characters, a-z, 0-9, '-' and '.', each part starting and ending with a letter or digit"
	msgQualName = "must be a qualified name: an optional DNS subdomain prefix (at most 253 characters) and '/', then at most 63 characters of [A-Za-z0-9-_.] starting and ending with a letter or digit"
	msgLabelVal = "must be a valid label value: empty or at most 63 characters of [A-Za-z0-9-_.], starting and ending with a letter or digit"
)

// maxAnnotationBytes is the total size of a metadata.annotations map's keys
// and values (TotalAnnotationSizeLimitB).
const maxAnnotationBytes = 256 << 10

var standardFin = map[string]bool{"kubernetes": true, "orphan": true, "foregroundDeletion": true}

// isDNSLabel reports whether s is an RFC 1123 label.
func isDNSLabel(s string) bool { return len(s) <= 63 && rfc1123Part(s) }

// isDNSSubdomain reports whether s is an RFC 1123 subdomain.
func isDNSSubdomain(s string) bool { return len(s) <= 253 && rfc1123Subdomain(s) }

// isQualifiedName reports whether s is a qualified name (IsQualifiedName):
// an optional DNS-subdomain prefix and '/', then a name of at most 63
// characters.
func isQualifiedName(s string) bool {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		name = prefix
	} else if prefix == "" || !isDNSSubdomain(prefix) || strings.Contains(name, "/") {
		return false
	}
	return len(name) <= 63 && nameBody(name)
}

// isLabelValue reports whether s is a valid label value.
func isLabelValue(s string) bool { return s == "" || len(s) <= 63 && nameBody(s) }

// checkMeta runs the Go rules of metadata. dnsLabel selects the name rule of
// generateName: an RFC 1123 label (Service) or subdomain (EndpointSlice).
func checkMeta(doc *ast.StructLit, dnsLabel bool) []fieldError {
	var errs []fieldError
	meta := asStruct(get(doc, "metadata"))
	if meta == nil {
		return nil
	}
	metaP := fpath{"metadata"}

	// M4: generateName, in prefix mode: apimachinery's maskTrailingDash
	// replaces a trailing '-' and the character before it by one 'a'
	// ("web_-" is checked as "wea").
	if g, ok := stringLit(get(meta, "generateName")); ok && g != "" {
		masked := g
		if len(masked) > 1 && strings.HasSuffix(masked, "-") {
			masked = masked[:len(masked)-2] + "a"
		}
		valid, msg := isDNSSubdomain(masked), msgDNSSub
		if dnsLabel {
			valid, msg = isDNSLabel(masked), msgDNSLabel
		}
		if !valid {
			errs = append(errs, fieldError{path: metaP.key("generateName"), msg: fmt.Sprintf("invalid value %q: %s", g, msg)})
		}
	}

	// The fields the API server decodes into a metav1.Time or an int64
	// fail the request's decoding when they are not one (an HTTP 400
	// before any rule runs): a time is null or RFC 3339 (time.RFC3339, as
	// Time.UnmarshalJSON parses it), an integer fits in 64 bits.
	for _, name := range []string{"creationTimestamp", "deletionTimestamp"} {
		if v, ok := stringLit(get(meta, name)); ok {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				errs = append(errs, fieldError{path: metaP.key(name),
					msg: fmt.Sprintf("invalid value %q: must be a time in RFC 3339 form, such as 2006-01-02T15:04:05Z (the API server cannot decode it)", v)})
			}
		}
	}
	for _, name := range []string{"generation", "deletionGracePeriodSeconds"} {
		if text, ok := intText(get(meta, name)); ok {
			if _, err := strconv.ParseInt(text, 0, 64); err != nil {
				errs = append(errs, fieldError{path: metaP.key(name),
					msg: fmt.Sprintf("invalid value %s: must fit in a 64-bit integer (the API server cannot decode a larger one)", text)})
			}
		}
	}

	// M6: labels.
	errs = append(errs, checkLabelMap(asStruct(get(meta, "labels")), metaP.key("labels"))...)

	// M7: annotation keys (checked lowercased) and total size.
	if ann := asStruct(get(meta, "annotations")); ann != nil {
		annP := metaP.key("annotations")
		size := 0
		for _, f := range structFields(ann) {
			size += len(f.name)
			if v, ok := stringLit(f.value); ok {
				size += len(v)
			}
			if !isQualifiedName(strings.ToLower(f.name)) {
				errs = append(errs, fieldError{path: annP, at: annP.key(f.name),
					msg: fmt.Sprintf("invalid value %q: %s", f.name, msgQualName)})
			}
		}
		if size > maxAnnotationBytes {
			errs = append(errs, fieldError{path: annP, msg: fmt.Sprintf("too long: may not be more than %d bytes (the keys and values total %d)", maxAnnotationBytes, size)})
		}
	}

	// M8: finalizers. A malformed name is reported on the list (the API
	// server's ValidateFinalizers), a short non-standard one on the entry.
	finP := metaP.key("finalizers")
	orphan, foreground := false, false
	for i, el := range elems(get(meta, "finalizers")) {
		s, ok := stringLit(el)
		if !ok {
			continue
		}
		orphan = orphan || s == "orphan"
		foreground = foreground || s == "foregroundDeletion"
		if !isQualifiedName(s) {
			errs = append(errs, fieldError{path: finP, at: finP.index(i), msg: fmt.Sprintf("invalid value %q: %s", s, msgQualName)})
		}
		if !strings.Contains(s, "/") && !standardFin[s] {
			errs = append(errs, fieldError{path: finP.index(i),
				msg: fmt.Sprintf("invalid value %q: name is neither a standard finalizer name (kubernetes, orphan, foregroundDeletion) nor is it fully qualified", s)})
		}
	}
	if orphan && foreground {
		errs = append(errs, fieldError{path: finP, msg: "invalid value: finalizer orphan and foregroundDeletion cannot be both set"})
	}

	// M9: owner references. The API server reports their fields without
	// the list index (metadata.ownerReferences.uid).
	refP := metaP.key("ownerReferences")
	controller := "" // the first reference with controller: true
	for i, el := range elems(get(meta, "ownerReferences")) {
		ref := asStruct(el)
		if ref == nil {
			continue
		}
		at := refP.index(i)
		str := func(name string) string {
			s, _ := stringLit(get(ref, name))
			return s
		}
		apiVersion, kind := str("apiVersion"), str("kind")
		if ownerVersion(apiVersion) == "" {
			errs = append(errs, fieldError{path: refP.key("apiVersion"), at: at.key("apiVersion"), msg: fmt.Sprintf("invalid value %q: version must not be empty", apiVersion)})
		}
		for _, f := range []string{"kind", "name", "uid"} {
			if str(f) == "" {
				errs = append(errs, fieldError{path: refP.key(f), at: at.key(f), msg: fmt.Sprintf("invalid value \"\": %s must not be empty", f)})
			}
		}
		// BannedOwners, by group and version: "/v1" is the core group's v1
		// too (ParseGroupVersion).
		if (apiVersion == "v1" || apiVersion == "/v1") && kind == "Event" {
			errs = append(errs, fieldError{path: refP, at: at, msg: "invalid value: /v1, Kind=Event is disallowed from being an owner"})
		}
		if b, ok := get(ref, "controller").(*ast.BasicLit); ok && b.Value == "true" {
			if controller == "" {
				controller = kind + "/" + str("name")
			} else {
				errs = append(errs, fieldError{path: refP, at: at.key("controller"),
					msg: fmt.Sprintf("invalid value: only one reference can have controller set to true; found it in references for %s and %s", controller, kind+"/"+str("name"))})
			}
		}
	}
	return errs
}

// ownerVersion returns the version of an ownerReference's apiVersion as
// schema.ParseGroupVersion reads it ("" if it has none or is malformed).
func ownerVersion(apiVersion string) string {
	switch strings.Count(apiVersion, "/") {
	case 0:
		return apiVersion
	case 1:
		_, v, _ := strings.Cut(apiVersion, "/")
		return v
	}
	return ""
}

// checkLabelMap checks the keys and values of a label map (metadata.labels,
// spec.selector); errors are reported on the map's path p.
func checkLabelMap(m *ast.StructLit, p fpath) []fieldError {
	var errs []fieldError
	for _, f := range structFields(m) {
		if !isQualifiedName(f.name) {
			errs = append(errs, fieldError{path: p, at: p.key(f.name), msg: fmt.Sprintf("invalid value %q: %s", f.name, msgQualName)})
		}
		if v, ok := stringLit(f.value); ok && !isLabelValue(v) {
			errs = append(errs, fieldError{path: p, at: p.key(f.name), msg: fmt.Sprintf("invalid value %q: %s", v, msgLabelVal)})
		}
	}
	return errs
}

// mapField is one key of a YAML or JSON mapping.
type mapField struct {
	name  string
	value ast.Expr
}

// structFields returns s's fields in document order (for duplicate keys, the
// last, which Go's JSON decoding keeps; normalisation already dropped the
// others).
func structFields(s *ast.StructLit) []mapField {
	if s == nil {
		return nil
	}
	var out []mapField
	for _, el := range s.Elts {
		f, ok := el.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := labelName(f.Label)
		if err != nil {
			// A quoted label the CUE helper cannot name; unquote it.
			if b, ok := f.Label.(*ast.BasicLit); ok {
				if s, err := strconv.Unquote(b.Value); err == nil {
					name = s
				}
			}
		}
		out = append(out, mapField{name, f.Value})
	}
	return out
}

// intText returns an integer literal's text, with its sign.
func intText(e ast.Expr) (string, bool) {
	sign := ""
	if u, ok := e.(*ast.UnaryExpr); ok {
		if u.Op == token.SUB {
			sign = "-"
		}
		e = u.X
	}
	if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.INT {
		return sign + strings.ReplaceAll(b.Value, "_", ""), true
	}
	return "", false
}
