package lambdaapi

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Lambda's API parses an invocation's payload with Jackson (the Java JSON
// parser) and answers a malformed one with Jackson's own description of what
// it found, e.g. (testdata/aws-recordings, test_lambda_invoke_payload_encoding_error)
//
//	Could not parse request body into json: Could not parse payload into json: Unexpected
//	character ((CTRL-CHAR, code 153)): expected a valid value (JSON String, Number, Array,
//	Object or token 'null', 'true' or 'false')
//	 at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 1]
//
// jacksonSyntaxError reproduces those descriptions: it reads a payload as
// Jackson's byte parser does (UTF8StreamJsonParser with its default
// features: no comments, no single quotes, no trailing commas, nesting up to
// 1000) and words the first problem as Jackson does, with the line and column
// it would give. What Go's parser says never reaches a caller.

// jacksonSource is how Jackson names an input it was told not to quote.
const jacksonSource = "REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled)"

// jacksonValueList is what Jackson says it expected where a value was not.
const jacksonValueList = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"

// jacksonMaxDepth is Jackson's default StreamReadConstraints nesting limit.
const jacksonMaxDepth = 1000

// jacksonSyntaxError returns Jackson's description of the first problem in
// b, location included, or "" when Jackson would read b as one JSON value.
func jacksonSyntaxError(b []byte) (msg string) {
	p := &jparser{b: b, line: 1}
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(jsonSyntaxPanic)
			if !ok {
				panic(r)
			}
			msg = string(e)
		}
	}()
	p.document()
	return ""
}

// jsonSyntaxPanic carries a finished message out of the parser.
type jsonSyntaxPanic string

// jparser reads one document. pos is the next byte; line and rowStart give
// Jackson's line (1-based) and the offset where it starts.
type jparser struct {
	b        []byte
	pos      int
	line     int
	rowStart int
	stack    []jctx // open objects and arrays
}

// jctx is an open object or array: where it started, and whether an entry
// has been read (a comma must come next).
type jctx struct {
	object     bool
	line, col  int
	hasEntries bool
}

func (c jctx) desc() string {
	if c.object {
		return "Object"
	}
	return "Array"
}

func location(line, col int) string {
	return "[Source: " + jacksonSource + "; line: " + strconv.Itoa(line) + ", column: " + strconv.Itoa(col) + "]"
}

// fail reports msg at the current position (just past what was read).
func (p *jparser) fail(msg string) {
	panic(jsonSyntaxPanic(msg + "\n at " + location(p.line, p.pos-p.rowStart+1)))
}

// failAtLast reports msg at the byte just read, as Jackson locates an
// unexpected character.
func (p *jparser) failAtLast(msg string) {
	panic(jsonSyntaxPanic(msg + "\n at " + location(p.line, p.pos-p.rowStart)))
}

func (p *jparser) eof() bool { return p.pos >= len(p.b) }

func (p *jparser) next() int {
	c := int(p.b[p.pos])
	p.pos++
	return c
}

// skipWS skips white space and returns the next byte, consumed, or -1 at
// the end.
func (p *jparser) skipWS() int {
	for !p.eof() {
		c := p.next()
		switch c {
		case ' ', '\t':
		case '\n':
			p.line++
			p.rowStart = p.pos
		case '\r':
			if !p.eof() && p.b[p.pos] == '\n' {
				p.pos++
			}
			p.line++
			p.rowStart = p.pos
		case '/':
			p.failAtLast("Unexpected character ('/' (code 47)): maybe a (non-standard) comment? (not recognized as one since Feature 'ALLOW_COMMENTS' not enabled for parser)")
		default:
			if c < ' ' {
				p.failAtLast("Illegal character (" + charDesc(rune(c)) + "): only regular white space (\\r, \\n, \\t) is allowed between tokens")
			}
			return c
		}
	}
	return -1
}

// document reads one value and checks that nothing but white space follows.
func (p *jparser) document() {
	c := p.skipWS()
	if c < 0 {
		p.fail("No content to map due to end-of-input")
	}
	p.rootCloser(c)
	p.value(c, false)
	for len(p.stack) > 0 {
		p.afterValue()
	}
	if c = p.skipWS(); c < 0 {
		return
	}
	// A second root value: Jackson reads its first token, then refuses it.
	p.rootCloser(c)
	var typ string
	switch c {
	case '{':
		typ = "START_OBJECT"
	case '[':
		typ = "START_ARRAY"
	case '"':
		typ = "VALUE_STRING" // read lazily: its contents do not matter
	default:
		typ = p.value(c, false)
	}
	p.fail("Trailing token (of type " + typ + ") found after value (bound as `com.fasterxml.jackson.databind.JsonNode`): not allowed as per `DeserializationFeature.FAIL_ON_TRAILING_TOKENS`")
}

// rootCloser reports a close marker outside any object or array.
func (p *jparser) rootCloser(c int) {
	switch c {
	case ']':
		p.fail("Unexpected close marker ']': expected '}' (for root starting at " + location(1, 0) + ")")
	case '}':
		p.fail("Unexpected close marker '}': expected ']' (for root starting at " + location(1, 0) + ")")
	}
}

// value reads the token that starts with c (consumed) and returns its
// Jackson type; an object or array is opened and left for afterValue.
// afterColon says the value is an object member's.
func (p *jparser) value(c int, afterColon bool) string {
	switch {
	case c == '{' || c == '[':
		if len(p.stack) >= jacksonMaxDepth {
			p.fail(fmt.Sprintf("Document nesting depth (%d) exceeds the maximum allowed (%d, from `StreamReadConstraints.getMaxNestingDepth()`)",
				len(p.stack)+1, jacksonMaxDepth))
		}
		ctx := jctx{object: c == '{', line: p.line, col: p.pos - p.rowStart}
		p.stack = append(p.stack, ctx)
		if ctx.object {
			return "START_OBJECT"
		}
		return "START_ARRAY"
	case c == '"':
		p.str("string value")
		return "VALUE_STRING"
	case c == 't':
		p.literal("true")
		return "VALUE_TRUE"
	case c == 'f':
		p.literal("false")
		return "VALUE_FALSE"
	case c == 'n':
		p.literal("null")
		return "VALUE_NULL"
	case c == '-' || c >= '0' && c <= '9':
		return p.number(c)
	case afterColon && (c == ']' || c == '}'):
		p.failAtLast("Unexpected character (" + charDesc(rune(c)) + "): expected a value")
	}
	p.unexpectedValue(c)
	return ""
}

// afterValue reads what follows inside the innermost open object or array:
// its end, or (after a comma unless it is the first) its next entry.
func (p *jparser) afterValue() {
	top := &p.stack[len(p.stack)-1]
	c := p.skipWS()
	if c < 0 {
		p.fail("Unexpected end-of-input: expected close marker for " + top.desc() + " (start marker at " + location(top.line, top.col) + ")")
	}
	if c == ']' || c == '}' {
		if (c == '}') != top.object {
			want := ']'
			if top.object {
				want = '}'
			}
			p.fail(fmt.Sprintf("Unexpected close marker '%c': expected '%c' (for %s starting at %s)", c, want, top.desc(), location(top.line, top.col)))
		}
		p.stack = p.stack[:len(p.stack)-1]
		return
	}
	if top.hasEntries {
		if c != ',' {
			p.failAtLast("Unexpected character (" + charDesc(rune(c)) + "): was expecting comma to separate " + top.desc() + " entries")
		}
		if c = p.skipWS(); c < 0 {
			p.fail("Unexpected end-of-input within/between " + top.desc() + " entries")
		}
	}
	top.hasEntries = true
	if !top.object {
		p.value(c, false)
		return
	}
	p.fieldName(c)
	c = p.skipWS()
	if c < 0 {
		p.fail("Unexpected end-of-input within/between Object entries")
	}
	if c != ':' {
		p.failAtLast("Unexpected character (" + charDesc(rune(c)) + "): was expecting a colon to separate field name and value")
	}
	if c = p.skipWS(); c < 0 {
		p.fail("Unexpected end-of-input within/between Object entries")
	}
	p.value(c, true)
}

// fieldName reads an object's key starting with c.
func (p *jparser) fieldName(c int) {
	if c != '"' {
		r := p.charForError(c)
		p.failAtLast("Unexpected character (" + charDesc(r) + "): was expecting double-quote to start field name")
	}
	p.str("name")
}

// unexpectedValue reports c where a value should start.
func (p *jparser) unexpectedValue(c int) {
	switch c {
	case ']', ',', '}':
		if c == ']' && (len(p.stack) == 0 || p.stack[len(p.stack)-1].object) {
			break
		}
		p.failAtLast("Unexpected character (" + charDesc(rune(c)) + "): expected a value")
	case 'N':
		p.literalOrInvalid("NaN")
		p.fail("Non-standard token 'NaN': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow")
	case 'I':
		p.literalOrInvalid("Infinity")
		p.fail("Non-standard token 'Infinity': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow")
	case '+':
		if p.eof() {
			p.fail("Unexpected end-of-input in a Number value")
		}
		if p.b[p.pos] == 'I' {
			p.pos++
			p.literalOrInvalid("+Infinity"[1:])
			p.fail("Non-standard token '+Infinity': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow")
		}
		p.failAtLast("Unexpected character ('+' (code 43)) in numeric value: JSON spec does not allow numbers to have plus signs: enable `JsonReadFeature.ALLOW_LEADING_PLUS_SIGN_FOR_NUMBERS` to allow")
	}
	// Jackson reads the byte as a Latin-1 character here.
	if r := rune(c); javaIdentifierStart(r) {
		p.invalidToken(string(r))
	}
	p.failAtLast("Unexpected character (" + charDesc(rune(c)) + "): expected a valid value " + jacksonValueList)
}

// literal matches the rest of true, false or null (its first byte read).
func (p *jparser) literal(word string) {
	p.literalOrInvalid(word)
	if !p.eof() {
		if c := int(p.b[p.pos]); c >= '0' && c != ']' && c != '}' {
			// Jackson decodes the next character starting from its first
			// byte without consuming it: a multi-byte one fails as a bad
			// middle byte.
			at := p.pos
			r := p.charForError(c)
			p.pos = at
			if javaIdentifierPart(r) {
				p.invalidToken(word)
			}
		}
	}
}

// literalOrInvalid matches word (its first byte read) or reports the
// unrecognised token.
func (p *jparser) literalOrInvalid(word string) {
	for i := 1; i < len(word); i++ {
		if p.eof() || p.b[p.pos] != word[i] {
			p.invalidToken(word[:i])
		}
		p.pos++
	}
}

// invalidToken reports the token that starts with matched and goes on with
// every following character that could be part of a Java identifier (up to
// 256), as Jackson quotes it.
func (p *jparser) invalidToken(matched string) {
	tok := []rune(matched)
	for !p.eof() {
		r := p.charForError(p.next())
		if !javaIdentifierPart(r) {
			break
		}
		tok = append(tok, r)
		if len(tok) >= 256 {
			tok = append(tok, []rune("...")...)
			break
		}
	}
	p.fail("Unrecognized token '" + string(tok) + "': was expecting " + jacksonValueList)
}

// charForError decodes the UTF-8 character that starts with byte c (read),
// reading the rest of it, as Jackson does to quote it in an error.
func (p *jparser) charForError(c int) rune {
	if c < 0x80 {
		return rune(c)
	}
	var need int
	var r rune
	switch {
	case c&0xE0 == 0xC0:
		need, r = 1, rune(c&0x1F)
	case c&0xF0 == 0xE0:
		need, r = 2, rune(c&0x0F)
	case c&0xF8 == 0xF0:
		need, r = 3, rune(c&0x07)
	default:
		p.fail("Invalid UTF-8 start byte 0x" + strconv.FormatInt(int64(c), 16))
	}
	for range need {
		if p.eof() {
			p.fail("Unexpected end-of-input in character escape sequence")
		}
		d := p.next()
		if d&0xC0 != 0x80 {
			p.fail("Invalid UTF-8 middle byte 0x" + strconv.FormatInt(int64(d), 16))
		}
		r = r<<6 | rune(d&0x3F)
	}
	return r
}

// str reads a string's contents and its closing quote (the opening one
// read); what is "string value" or "name".
func (p *jparser) str(what string) {
	for {
		if p.eof() {
			if what == "name" {
				p.fail("Unexpected end-of-input in field name")
			}
			p.fail("Unexpected end-of-input: was expecting closing quote for a String value")
		}
		c := p.next()
		switch {
		case c == '"':
			return
		case c == '\\':
			p.escape()
		case c < ' ':
			p.fail("Illegal unquoted character (" + charDesc(rune(c)) + "): has to be escaped using backslash to be included in " + what)
		case c >= 0x80:
			p.utf8Char(c)
		}
	}
}

// utf8Char checks the multi-byte character that starts with c (read).
func (p *jparser) utf8Char(c int) {
	var need int
	switch {
	case c&0xE0 == 0xC0:
		need = 1
	case c&0xF0 == 0xE0:
		need = 2
	case c&0xF8 == 0xF0:
		need = 3
	default:
		p.fail("Invalid UTF-8 start byte 0x" + strconv.FormatInt(int64(c), 16))
	}
	for range need {
		if p.eof() {
			p.fail("Unexpected end-of-input: was expecting closing quote for a String value")
		}
		if d := p.next(); d&0xC0 != 0x80 {
			p.fail("Invalid UTF-8 middle byte 0x" + strconv.FormatInt(int64(d), 16))
		}
	}
}

// escape reads an escape sequence after its backslash.
func (p *jparser) escape() {
	if p.eof() {
		p.fail("Unexpected end-of-input in character escape sequence")
	}
	c := p.next()
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return
	case 'u':
		for range 4 {
			if p.eof() {
				p.fail("Unexpected end-of-input in character escape sequence")
			}
			d := p.next()
			if !(d >= '0' && d <= '9' || d >= 'a' && d <= 'f' || d >= 'A' && d <= 'F') {
				p.failAtLast("Unexpected character (" + charDesc(rune(d)) + "): expected a hex-digit for character escape sequence")
			}
		}
		return
	}
	p.fail("Unrecognized character escape " + charDesc(p.charForError(c)))
}

// number reads a number that starts with c (read) and returns its type.
func (p *jparser) number(c int) string {
	if c == '-' {
		if p.eof() {
			p.fail("Unexpected end-of-input in a Number value")
		}
		c = p.next()
		if c < '0' || c > '9' {
			if c == 'I' {
				p.pos--
				p.literalOrInvalid("-Infinity"[1:])
				p.fail("Non-standard token '-Infinity': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow")
			}
			p.failAtLast("Unexpected character (" + charDesc(p.charForErrorAt(c)) + ") in numeric value: expected digit (0-9) to follow minus sign, for valid numeric value")
		}
	}
	if c == '0' && !p.eof() && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
		p.fail("Invalid numeric value: Leading zeroes not allowed")
	}
	p.digits()
	typ := "VALUE_NUMBER_INT"
	if !p.eof() && p.b[p.pos] == '.' {
		typ = "VALUE_NUMBER_FLOAT"
		p.pos++
		if p.digits() == 0 {
			p.badNumberChar("Decimal point not followed by a digit")
		}
	}
	if !p.eof() && (p.b[p.pos] == 'e' || p.b[p.pos] == 'E') {
		typ = "VALUE_NUMBER_FLOAT"
		p.pos++
		if !p.eof() && (p.b[p.pos] == '+' || p.b[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			p.badNumberChar("Exponent indicator not followed by a digit")
		}
	}
	if len(p.stack) == 0 && !p.eof() {
		// A root-level number must be followed by white space or the end.
		switch c := p.b[p.pos]; c {
		case ' ', '\t', '\n', '\r':
		default:
			p.pos++
			p.failAtLast("Unexpected character (" + charDesc(p.charForErrorAt(int(c))) + "): Expected space separating root-level values")
		}
	}
	return typ
}

// charForErrorAt is charForError for a byte already read whose character
// is needed for a message only.
func (p *jparser) charForErrorAt(c int) rune {
	if c < 0x80 {
		return rune(c)
	}
	return p.charForError(c)
}

// digits skips digits and returns how many.
func (p *jparser) digits() int {
	n := 0
	for !p.eof() && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// badNumberChar reports the character where a number's digits should go on.
func (p *jparser) badNumberChar(why string) {
	if p.eof() {
		p.fail("Unexpected end-of-input in a Number value")
	}
	c := p.next()
	p.failAtLast("Unexpected character (" + charDesc(p.charForErrorAt(c)) + ") in numeric value: " + why)
}

// charDesc describes a character as Jackson's _getCharDesc does.
func charDesc(r rune) string {
	switch {
	case r <= 0x1F || r >= 0x7F && r <= 0x9F:
		return "(CTRL-CHAR, code " + strconv.Itoa(int(r)) + ")"
	case r > 255:
		s := string(r)
		if !utf8.ValidRune(r) {
			s = "\uFFFD"
		}
		return "'" + s + "' (code " + strconv.Itoa(int(r)) + " / 0x" + strconv.FormatInt(int64(r), 16) + ")"
	}
	return "'" + string(r) + "' (code " + strconv.Itoa(int(r)) + ")"
}

// javaIdentifierStart is Java's Character.isJavaIdentifierStart: letters,
// currency symbols, connector punctuation and letter numbers.
func javaIdentifierStart(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Sc, r) || unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Nl, r)
}

// javaIdentifierPart is Java's Character.isJavaIdentifierPart: identifier
// starts, digits, combining marks, and the characters Java ignores in
// identifiers (most control characters and format characters).
func javaIdentifierPart(r rune) bool {
	return javaIdentifierStart(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) ||
		r <= 8 || r >= 0x0E && r <= 0x1B || r >= 0x7F && r <= 0x9F || unicode.Is(unicode.Cf, r)
}
