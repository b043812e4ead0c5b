package policy

// TypeName returns the JSON type of a decoded JSON value with its article,
// such as "an object" or "a number", for error messages.
func TypeName(value any) string {
	return typeName(value)
}
