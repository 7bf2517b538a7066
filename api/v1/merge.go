package v1

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Origins says where each value of a merged spec was written: idx path in
// the merged spec (e.g. "spec.services[0].replicas") -> source position.
type Origins map[string]Pos

// Locate returns where the value at idx, or its nearest recorded parent,
// came from.
func (o Origins) Locate(idx string) Pos {
	for p := idx; ; p = parentIdx(p) {
		if pos, ok := o[p]; ok {
			return pos
		}
		if p == "" {
			return Pos{}
		}
	}
}

// Merge lays src over dst: lists of named items merge by name (new names are
// appended in src's order), maps merge by key, and any scalar src says
// overrides dst. A field marked `merge:"replace"` (a probe) is replaced as a
// whole, since half of one probe and half of another is no probe. Every value
// taken from src is recorded in origins, located through srcLoc.
func Merge(dst, src *HostSpec, srcLoc func(idx string) Pos, origins Origins) {
	m := merger{loc: srcLoc, origins: origins}
	m.merge(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem(), specIdx, specIdx)
}

type merger struct {
	loc     func(string) Pos
	origins Origins
}

func (m merger) record(dIdx, sIdx string) { m.origins[dIdx] = m.loc(sIdx) }

// recordAll records dIdx and everything below it as coming from sIdx.
func (m merger) recordAll(v reflect.Value, dIdx, sIdx string) {
	m.record(dIdx, sIdx)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	switch {
	case isLeafStruct(v.Type()):
	case v.Kind() == reflect.Struct:
		eachField(v.Type(), func(i int, name string) {
			m.recordAll(v.Field(i), dIdx+"."+name, sIdx+"."+name)
		})
	case v.Kind() == reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			m.recordAll(v.Index(i), fmt.Sprintf("%s[%d]", dIdx, i), fmt.Sprintf("%s[%d]", sIdx, i))
		}
	case v.Kind() == reflect.Map:
		for _, k := range v.MapKeys() {
			m.record(dIdx+"."+k.String(), sIdx+"."+k.String())
		}
	}
}

func (m merger) merge(dst, src reflect.Value, dIdx, sIdx string) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		if dst.IsNil() || src.Elem().Kind() != reflect.Struct || isLeafStruct(src.Elem().Type()) {
			dst.Set(deepCopy(src))
			m.recordAll(dst, dIdx, sIdx)
			return
		}
		m.record(dIdx, sIdx)
		m.merge(dst.Elem(), src.Elem(), dIdx, sIdx)
	case reflect.Struct:
		if isLeafStruct(src.Type()) {
			dst.Set(src)
			m.record(dIdx, sIdx)
			return
		}
		t := src.Type()
		eachField(t, func(i int, name string) {
			f := t.Field(i)
			if f.Tag.Get("merge") == "replace" {
				if !src.Field(i).IsZero() {
					dst.Field(i).Set(deepCopy(src.Field(i)))
					m.recordAll(dst.Field(i), dIdx+"."+name, sIdx+"."+name)
				}
				return
			}
			m.merge(dst.Field(i), src.Field(i), dIdx+"."+name, sIdx+"."+name)
		})
		// Inline embedded structs share their parent's path.
		for i := 0; i < t.NumField(); i++ {
			if f := t.Field(i); f.Anonymous && jsonName(f) == "" {
				m.merge(dst.Field(i), src.Field(i), dIdx, sIdx)
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		if hasNameField(src.Type().Elem()) {
			m.mergeNamed(dst, src, dIdx, sIdx)
			return
		}
		dst.Set(deepCopy(src))
		m.recordAll(dst, dIdx, sIdx)
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(src.Type()))
		}
		m.record(dIdx, sIdx)
		for _, k := range src.MapKeys() {
			dst.SetMapIndex(k, src.MapIndex(k))
			m.record(dIdx+"."+k.String(), sIdx+"."+k.String())
		}
	case reflect.String:
		if src.Len() > 0 {
			dst.Set(src)
			m.record(dIdx, sIdx)
		}
	default:
		// Plain numbers and booleans cannot say "not set"; the types use
		// pointers for them (TestSpecTypesHaveNoPlainScalars keeps it so).
		panic(fmt.Sprintf("v1.Merge: field %s of kind %s cannot be merged", dIdx, src.Kind()))
	}
}

// mergeNamed merges two lists of items with a name field by name. The
// names already in dst are indexed once: a host declaring 1,000 services
// must not cost a million reflective field lookups (make bench, scenario 3).
func (m merger) mergeNamed(dst, src reflect.Value, dIdx, sIdx string) {
	if dst.IsNil() {
		dst.Set(reflect.MakeSlice(dst.Type(), 0, src.Len()))
	}
	m.record(dIdx, sIdx)
	f, _ := src.Type().Elem().FieldByName("Name")
	at := make(map[string]int, dst.Len()+src.Len())
	for i := 0; i < dst.Len(); i++ {
		name := dst.Index(i).FieldByIndex(f.Index).String()
		if _, dup := at[name]; !dup {
			at[name] = i
		}
	}
	for j := 0; j < src.Len(); j++ {
		item := src.Index(j)
		name := item.FieldByIndex(f.Index).String()
		i, ok := at[name]
		sItem := sIdx + "[" + strconv.Itoa(j) + "]"
		if !ok {
			dst.Set(reflect.Append(dst, reflect.Zero(item.Type())))
			i = dst.Len() - 1
			at[name] = i
			m.record(dIdx+"["+strconv.Itoa(i)+"]", sItem)
		}
		m.merge(dst.Index(i), item, dIdx+"["+strconv.Itoa(i)+"]", sItem)
	}
}

// isLeafStruct is true for struct types that are single values in YAML.
func isLeafStruct(t reflect.Type) bool { return t == durationType || t == timeType }

func hasNameField(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	f, ok := t.FieldByName("Name")
	return ok && f.Type.Kind() == reflect.String
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// eachField calls fn for every named (non-inline) JSON field of a struct.
func eachField(t reflect.Type, fn func(i int, name string)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name := jsonName(f); name != "" && name != "-" && f.IsExported() {
			fn(i, name)
		}
	}
}

// deepCopy copies a value so the merged spec shares no memory with its sources.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(deepCopy(v.Elem()))
		return p
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := 0; i < v.Len(); i++ {
			s.Index(i).Set(deepCopy(v.Index(i)))
		}
		return s
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		mm := reflect.MakeMapWithSize(v.Type(), v.Len())
		for _, k := range v.MapKeys() {
			mm.SetMapIndex(k, deepCopy(v.MapIndex(k)))
		}
		return mm
	case reflect.Struct:
		s := reflect.New(v.Type()).Elem()
		s.Set(v)
		for i := 0; i < v.NumField(); i++ {
			if s.Field(i).CanSet() {
				s.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return s
	}
	return v
}
