package cqrs

import "reflect"

type commandNamer interface{ CommandName() string }

type queryNamer interface{ QueryName() string }

var (
	commandNamerType = reflect.TypeFor[commandNamer]()
	queryNamerType   = reflect.TypeFor[queryNamer]()
)

// nameOf returns the stable name of a command or query type: what its
// CommandName or QueryName method returns, called on a zero value, or else
// the Go type name. It runs at registration and on error paths only.
func nameOf(t reflect.Type, kind Kind) string {
	iface := commandNamerType
	if kind == KindQuery {
		iface = queryNamerType
	}
	var v reflect.Value
	switch {
	case t.Kind() == reflect.Interface:
		return t.String()
	case t.Kind() == reflect.Pointer && t.Implements(iface):
		v = reflect.New(t.Elem()) // not a nil pointer: value-receiver methods would panic
	case t.Implements(iface):
		v = reflect.Zero(t)
	case reflect.PointerTo(t).Implements(iface):
		v = reflect.New(t)
	default:
		return t.String()
	}
	if name := callName(v, kind); name != "" {
		return name
	}
	return t.String()
}

// callName calls the name method, treating a panic like an empty name.
func callName(v reflect.Value, kind Kind) (name string) {
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	if kind == KindQuery {
		return v.Interface().(queryNamer).QueryName()
	}
	return v.Interface().(commandNamer).CommandName()
}

// label formats a type for errors: "user.register (app.RegisterUser)", or
// just "app.RegisterUser" when the type has no name of its own.
func label(name string, t reflect.Type) string {
	if name == t.String() {
		return name
	}
	return name + " (" + t.String() + ")"
}
