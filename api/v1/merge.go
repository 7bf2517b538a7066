package v1

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
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
		fs := mergeFieldsOf(src.Type())
		for _, f := range fs.named {
			sf := src.Field(f.index)
			if unset(sf) {
				// Nothing to lay over: skipping it here spares building
				// two paths for each of the many fields a spec leaves out.
				continue
			}
			if f.replace {
				if !sf.IsZero() {
					dst.Field(f.index).Set(deepCopy(sf))
					m.recordAll(dst.Field(f.index), dIdx+"."+f.name, sIdx+"."+f.name)
				}
				continue
			}
			m.merge(dst.Field(f.index), sf, dIdx+"."+f.name, sIdx+"."+f.name)
		}
		// Inline embedded structs share their parent's path.
		for _, i := range fs.inline {
			m.merge(dst.Field(i), src.Field(i), dIdx, sIdx)
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

// unset is true for the values merge lays over nothing: a nil pointer,
// slice or map, an empty string.
func unset(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	}
	return false
}

// mergeFields are a struct type's fields as merge walks them.
type mergeFields struct {
	named  []mergeField
	inline []int // inline embedded structs
}

type mergeField struct {
	index   int
	name    string
	replace bool // `merge:"replace"`
}

// mergeFieldCache holds mergeFields per type: merging a host of 1,000
// services asks for the same few types thousands of times.
var mergeFieldCache sync.Map // reflect.Type -> *mergeFields

func mergeFieldsOf(t reflect.Type) *mergeFields {
	if fs, ok := mergeFieldCache.Load(t); ok {
		return fs.(*mergeFields)
	}
	fs := &mergeFields{}
	eachField(t, func(i int, name string) {
		fs.named = append(fs.named, mergeField{index: i, name: name, replace: t.Field(i).Tag.Get("merge") == "replace"})
	})
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.Anonymous && jsonName(f) == "" {
			fs.inline = append(fs.inline, i)
		}
	}
	mergeFieldCache.Store(t, fs)
	return fs
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
