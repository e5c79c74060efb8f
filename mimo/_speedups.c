/* mimo's optional compiled core: the per-item fast paths of the ports.
 *
 * mimo/_ports.py and mimo/_channel.py are the reference: this file does what
 * their pure-Python fast paths do, without a Python frame per item.
 *
 *  - OutputPort.push: enqueue on the port's one plain Channel when it has
 *    room and return the port's "delivered" awaitable (a Pushed); otherwise
 *    call the Python slow path (_push_slow) exactly as the Python push does.
 *    Awaiting (or sending into, throwing into, closing) a Pushed clears the
 *    port's _pending, so a push that was never awaited is still found by the
 *    next push or close (PushNotAwaited).
 *  - InputPort.__aiter__: an async iterator whose awaitable pops a buffered
 *    item and returns it at once; on an empty buffer it drives the Python slow
 *    path (_pop_slow), forwarding send / throw / close like `yield from`, and
 *    turns EndOfStream into StopAsyncIteration.
 *
 * The Python classes keep their __slots__; setup() reads the slot offsets from
 * their member descriptors, so both implementations share the same fields and
 * every other method stays in Python.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif
#ifndef Py_READONLY
#define Py_READONLY READONLY
#endif

/* -- what setup() found ------------------------------------------------ */

static PyTypeObject *Channel_type;
static PyTypeObject *OutputPort_type;
static PyTypeObject *InputPort_type;
static PyTypeObject *Deque_type;
static PyObject *EndOfStream;
static PyObject *py_pop; /* InputPort.pop in Python: pops the compiled one hands over */
#if PY_VERSION_HEX >= 0x030C0000
static PyObject *stop_cache; /* a StopIteration kept for reuse */
#endif
static PyObject *pop_cache; /* a finished pop()'s NextItem kept for reuse */
static PyCFunction deque_append;  /* METH_O, or NULL: call the method */
static PyCFunction deque_popleft; /* METH_NOARGS, or NULL */

static struct {
    Py_ssize_t buf, cap, high, popped, getters, putters;
} CH;
static struct {
    Py_ssize_t one, one_push, pending, pushed, count;
} OUT;
static struct {
    Py_ssize_t ch;
} IN;

static PyObject *s_append, *s_popleft, *s_wake_getter, *s_room_freed, *s_not_awaited, *s_push_slow, *s_pop_slow,
    *s_throw, *s_close, *s_stream, *s_name;

/* -- slots of the Python objects ----------------------------------------- */

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* Borrowed; NULL with AttributeError when the slot is unset. */
static inline PyObject *
slot_get(PyObject *o, Py_ssize_t off, const char *name)
{
    PyObject *v = SLOT(o, off);
    if (v == NULL) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%s'", Py_TYPE(o)->tp_name, name);
    }
    return v;
}

/* Steals `v`. */
static inline void
slot_set(PyObject *o, Py_ssize_t off, PyObject *v)
{
    PyObject *old = SLOT(o, off);
    SLOT(o, off) = v;
    Py_XDECREF(old);
}

/* An int's value; inline for the small ints that counters and bounds are. */
static inline int
long_value(PyObject *v, Py_ssize_t *out)
{
    if (PyLong_CheckExact(v)) {
#if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
            *out = PyUnstable_Long_CompactValue((PyLongObject *)v);
            return 0;
        }
#else
        Py_ssize_t size = Py_SIZE(v);
        if (size >= -1 && size <= 1) {
            *out = size * (Py_ssize_t)((PyLongObject *)v)->ob_digit[0];
            return 0;
        }
#endif
    }
    Py_ssize_t x = PyLong_AsSsize_t(v);
    if (x == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = x;
    return 0;
}

static int
slot_ssize(PyObject *o, Py_ssize_t off, const char *name, Py_ssize_t *out)
{
    PyObject *v = slot_get(o, off, name);
    if (v == NULL) {
        return -1;
    }
    return long_value(v, out);
}

/* Add 1 to a one-digit positive int in place when nothing else can see it:
 * the slot holds the only reference (cached small ints never qualify), so no
 * one can tell it from a new int, and a counter bumped once per item
 * allocates nothing. 1 if done, 0 if the int does not qualify. */
static inline int
long_bump_in_place(PyObject *v)
{
#if defined(Py_GIL_DISABLED)
    return 0;
#elif PY_VERSION_HEX >= 0x030C0000
    if (!PyLong_CheckExact(v) || Py_REFCNT(v) != 1 || !PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        return 0;
    }
    PyLongObject *l = (PyLongObject *)v;
    /* lv_tag: digit count << 3 | sign bits (0 = positive). One positive digit: 1 << 3. */
    if (l->long_value.lv_tag != (1 << 3) || l->long_value.ob_digit[0] >= PyLong_MASK) {
        return 0;
    }
    l->long_value.ob_digit[0] += 1;
    return 1;
#else
    if (!PyLong_CheckExact(v) || Py_REFCNT(v) != 1 || Py_SIZE(v) != 1) {
        return 0;
    }
    PyLongObject *l = (PyLongObject *)v;
    if (l->ob_digit[0] >= PyLong_MASK) {
        return 0;
    }
    l->ob_digit[0] += 1;
    return 1;
#endif
}

static int
slot_add(PyObject *o, Py_ssize_t off, const char *name, Py_ssize_t k)
{
    PyObject *v = slot_get(o, off, name);
    if (v == NULL) {
        return -1;
    }
    if (k == 1 && long_bump_in_place(v)) {
        return 0;
    }
    PyObject *nv = NULL;
    Py_ssize_t x;
    if (PyLong_CheckExact(v)) {
        if (long_value(v, &x) < 0) {
            PyErr_Clear(); /* too big: PyNumber_Add below */
        }
        else if (x <= PY_SSIZE_T_MAX - k) {
            nv = PyLong_FromSsize_t(x + k);
            if (nv == NULL) {
                return -1;
            }
        }
    }
    if (nv == NULL) {
        PyObject *kk = PyLong_FromSsize_t(k);
        if (kk == NULL) {
            return -1;
        }
        nv = PyNumber_Add(v, kk);
        Py_DECREF(kk);
        if (nv == NULL) {
            return -1;
        }
    }
    slot_set(o, off, nv);
    return 0;
}

/* -- deques -------------------------------------------------------------- */

static inline Py_ssize_t
dq_len(PyObject *dq)
{
    if (Py_IS_TYPE(dq, Deque_type)) {
        return Py_SIZE(dq);
    }
    return PyObject_Size(dq);
}

static inline int
dq_append(PyObject *dq, PyObject *item)
{
    PyObject *r;
    if (deque_append != NULL && Py_IS_TYPE(dq, Deque_type)) {
        r = deque_append(dq, item);
    }
    else {
        r = PyObject_CallMethodOneArg(dq, s_append, item);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static inline PyObject *
dq_popleft(PyObject *dq)
{
    if (deque_popleft != NULL && Py_IS_TYPE(dq, Deque_type)) {
        return deque_popleft(dq, NULL);
    }
    return PyObject_CallMethodNoArgs(dq, s_popleft);
}

/* 1 if the deque in slot `off` of `o` is non-empty, 0 if empty, -1 on error. */
static inline int
slot_nonempty(PyObject *o, Py_ssize_t off, const char *name)
{
    PyObject *v = slot_get(o, off, name);
    if (v == NULL) {
        return -1;
    }
    if (Py_IS_TYPE(v, Deque_type)) {
        return Py_SIZE(v) > 0;
    }
    return PyObject_IsTrue(v);
}

static int
call_method0(PyObject *o, PyObject *name)
{
    PyObject *r = PyObject_CallMethodNoArgs(o, name);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Raise `typ` (a class or an instance, with `val`) as throw() does. */
static PyObject *
raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    PyObject *typ = args[0];
    PyObject *val = nargs > 1 ? args[1] : Py_None;
    if (PyExceptionInstance_Check(typ)) {
        PyErr_SetObject((PyObject *)Py_TYPE(typ), typ);
    }
    else if (PyExceptionClass_Check(typ)) {
        PyErr_SetObject(typ, val);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException");
    }
    return NULL;
}

/* ======================================================================== */
/* Pushed: what push returns when the item was delivered at once.          */

typedef struct {
    PyObject_HEAD
    PyObject *port;
} PushedObject;

static PyTypeObject Pushed_Type;

static inline void
pushed_mark(PushedObject *self)
{
    if (self->port != NULL) {
        slot_set(self->port, OUT.pending, Py_NewRef(Py_None));
    }
}

static PyObject *
Pushed_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *port;
    static char *kwlist[] = {"port", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Pushed", kwlist, &port)) {
        return NULL;
    }
    if (OutputPort_type == NULL || !PyObject_TypeCheck(port, OutputPort_type)) {
        PyErr_SetString(PyExc_TypeError, "Pushed(port) takes an OutputPort (after setup())");
        return NULL;
    }
    PushedObject *self = (PushedObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->port = Py_NewRef(port);
    return (PyObject *)self;
}

static int
Pushed_traverse(PushedObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->port);
    return 0;
}

static int
Pushed_clear(PushedObject *self)
{
    Py_CLEAR(self->port);
    return 0;
}

static void
Pushed_dealloc(PushedObject *self)
{
    PyObject_GC_UnTrack(self);
    Pushed_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Pushed_await(PushedObject *self)
{
    pushed_mark(self);
    return Py_NewRef(self);
}

/* Exhausted at once: NULL with no exception set is a return of None. */
static PyObject *
Pushed_iternext(PushedObject *self)
{
    pushed_mark(self);
    return NULL;
}

static PySendResult
Pushed_am_send(PushedObject *self, PyObject *arg, PyObject **result)
{
    pushed_mark(self);
    *result = Py_NewRef(Py_None);
    return PYGEN_RETURN;
}

static PyObject *
Pushed_send(PushedObject *self, PyObject *arg)
{
    pushed_mark(self);
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *
Pushed_throw(PushedObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    pushed_mark(self);
    return raise_thrown(args, nargs);
}

static PyObject *
Pushed_close(PushedObject *self, PyObject *unused)
{
    pushed_mark(self);
    Py_RETURN_NONE;
}

static PyObject *
Pushed_repr(PushedObject *self)
{
    if (self->port == NULL) {
        return PyUnicode_FromString("<push, delivered>");
    }
    PyObject *stream = PyObject_GetAttr(self->port, s_stream);
    if (stream == NULL) {
        return NULL;
    }
    PyObject *name = PyObject_GetAttr(self->port, s_name);
    if (name == NULL) {
        Py_DECREF(stream);
        return NULL;
    }
    PyObject *r = PyUnicode_FromFormat("<push on %S.%S, delivered>", stream, name);
    Py_DECREF(stream);
    Py_DECREF(name);
    return r;
}

static PyMethodDef Pushed_methods[] = {
    {"send", (PyCFunction)Pushed_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))Pushed_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)Pushed_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods Pushed_as_async = {
    .am_await = (unaryfunc)Pushed_await,
    .am_send = (sendfunc)Pushed_am_send,
};

static PyTypeObject Pushed_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mimo._speedups.Pushed",
    .tp_doc = "What push returns when it delivered the item at once: a finished coroutine.",
    .tp_basicsize = sizeof(PushedObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Pushed_new,
    .tp_dealloc = (destructor)Pushed_dealloc,
    .tp_traverse = (traverseproc)Pushed_traverse,
    .tp_clear = (inquiry)Pushed_clear,
    .tp_repr = (reprfunc)Pushed_repr,
    .tp_as_async = &Pushed_as_async,
    .tp_iternext = (iternextfunc)Pushed_iternext,
    .tp_methods = Pushed_methods,
};

/* ======================================================================== */
/* OutputPort.push                                                          */

static PyObject *
delivered(PyObject *port)
{
    if (slot_add(port, OUT.count, "count", 1) < 0) {
        return NULL;
    }
    PyObject *pushed = slot_get(port, OUT.pushed, "_pushed");
    if (pushed == NULL) {
        return NULL;
    }
    Py_INCREF(pushed);
    slot_set(port, OUT.pending, Py_NewRef(pushed));
    return pushed;
}

/* Channel.push_nowait's room case, inline as in the Python push: 1 if the
 * item went in, 0 if there was no room, -1 on error. */
static int
channel_push_fast(PyObject *ch, PyObject *item)
{
    PyObject *buf = slot_get(ch, CH.buf, "_buf");
    if (buf == NULL) {
        return -1;
    }
    /* Held: a buffer subclass (a checkpoint's) may swap ch._buf while we use it. */
    Py_INCREF(buf);
    Py_ssize_t n = dq_len(buf);
    Py_ssize_t cap;
    if (n < 0 || slot_ssize(ch, CH.cap, "_cap", &cap) < 0) {
        Py_DECREF(buf);
        return -1;
    }
    if (n >= cap) {
        Py_DECREF(buf);
        return 0;
    }
    int failed = dq_append(buf, item);
    Py_DECREF(buf);
    if (failed) {
        return -1;
    }
    Py_ssize_t high;
    if (slot_ssize(ch, CH.high, "_high", &high) < 0) {
        return -1;
    }
    if (n >= high) {
        PyObject *h = PyLong_FromSsize_t(n + 1);
        if (h == NULL) {
            return -1;
        }
        slot_set(ch, CH.high, h);
    }
    int waiting = slot_nonempty(ch, CH.getters, "_getters");
    if (waiting < 0) {
        return -1;
    }
    if (waiting && call_method0(ch, s_wake_getter) < 0) {
        return -1;
    }
    return 1;
}

static PyObject *
push_impl(PyObject *port, PyObject *item)
{
    PyObject *pending = slot_get(port, OUT.pending, "_pending");
    if (pending == NULL) {
        return NULL;
    }
    if (pending != Py_None && call_method0(port, s_not_awaited) < 0) {
        return NULL;
    }
    PyObject *ch = slot_get(port, OUT.one, "_one");
    if (ch == NULL) {
        return NULL;
    }
    if (ch != Py_None) {
        /* _one is a plain Channel (a checkpoint may swap its class for a subclass
         * for a while, whose fields are the same): the Python push trusts it too. */
        if (PyObject_TypeCheck(ch, Channel_type)) {
            Py_INCREF(ch);
            int done = channel_push_fast(ch, item);
            Py_DECREF(ch);
            if (done < 0) {
                return NULL;
            }
            if (done) {
                return delivered(port);
            }
        }
    }
    else {
        PyObject *push_nowait = slot_get(port, OUT.one_push, "_one_push");
        if (push_nowait == NULL) {
            return NULL;
        }
        if (push_nowait != Py_None) {
            Py_INCREF(push_nowait);
            PyObject *r = PyObject_CallOneArg(push_nowait, item);
            Py_DECREF(push_nowait);
            if (r == NULL) {
                return NULL;
            }
            int ok = PyObject_IsTrue(r);
            Py_DECREF(r);
            if (ok < 0) {
                return NULL;
            }
            if (ok) {
                return delivered(port);
            }
        }
    }
    PyObject *coro = PyObject_CallMethodOneArg(port, s_push_slow, item);
    if (coro == NULL) {
        return NULL;
    }
    slot_set(port, OUT.pending, Py_NewRef(coro));
    return coro;
}

static PyObject *
out_push(PyObject *port, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs == 1 && kwnames == NULL) {
        return push_impl(port, args[0]);
    }
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs + nkw == 1 && nkw == 1 && PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) &&
        PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "item") == 0) {
        return push_impl(port, args[0]);
    }
    PyErr_Format(PyExc_TypeError, "push() takes exactly one argument, item (%zd given)", nargs + nkw);
    return NULL;
}

static PyMethodDef push_def = {
    "push",
    (PyCFunction)(void (*)(void))out_push,
    METH_FASTCALL | METH_KEYWORDS,
    "push($self, item)\n--\n\n"
    "Send ``item`` to every joined input, waiting while any queue is full.\n\n"
    "Await the result (or run it as a task). When every queue has room the item is\n"
    "delivered at once and the coroutine has nothing left to do; otherwise it waits\n"
    "for room.",
};

/* ======================================================================== */
/* InputPort.__aiter__: ItemIter, whose __anext__ gives a NextItem.         */
/*
 * As the pure-Python iteration (InputPort.__anext__) does: each __anext__ is
 * one pop, a cancelled one takes no item and leaves the port readable,
 * several may wait at once, and at the end each one ends. The state of a
 * waiting pop is its NextItem's.
 */

typedef struct {
    PyObject_HEAD
    PyObject *port;
    PyObject *ch;
    PyObject *next; /* a NextItem kept for reuse */
} ItemIterObject;

/* One pop: of an iteration (it set: the end is StopAsyncIteration) or of
 * InputPort.pop() (it NULL: the end is EndOfStream). It pops when first
 * awaited, as a coroutine would, never when made. */
typedef struct {
    PyObject_HEAD
    ItemIterObject *it;
    PyObject *port;
    PyObject *ch;
    PyObject *slow; /* the running _pop_slow() coroutine, if waiting */
} NextItemObject;

static PyTypeObject ItemIter_Type;
static PyTypeObject NextItem_Type;

/* Of an iteration, an EndOfStream is its end: StopAsyncIteration (a later
 * next pops again, and ends again, as InputPort.__anext__ does). */
static void
it_fail(ItemIterObject *it)
{
    if (it != NULL && PyErr_ExceptionMatches(EndOfStream)) {
        PyErr_Clear();
        PyErr_SetNone(PyExc_StopAsyncIteration);
    }
}

/* While a NextItem waits, the iterator does not keep it for reuse: dropped,
 * it goes at once and its pop with it (the waiter leaves the channel), as a
 * dropped coroutine would. Idle again, it may be reused. */
static inline void
next_waiting(NextItemObject *self)
{
    if (self->it != NULL && self->it->next == (PyObject *)self) {
        Py_CLEAR(self->it->next); /* the caller holds another reference */
    }
}

static inline void
next_idle(NextItemObject *self)
{
    if (self->it != NULL && self->it->next == NULL) {
        self->it->next = Py_NewRef((PyObject *)self);
    }
}

/* A pop() that returned or failed is spent (as an awaited coroutine is):
 * it lets go of its port, and pop() may reuse it once nobody holds it. */
static inline void
next_done(NextItemObject *self)
{
    if (self->it == NULL) {
        Py_CLEAR(self->port);
        Py_CLEAR(self->ch);
    }
}

static PySendResult
next_forward(NextItemObject *self, PyObject *arg, PyObject **result)
{
    PyObject *res = NULL;
    PyObject *slow = Py_NewRef(self->slow); /* held while it runs, whatever it does to us */
    PySendResult st = PyIter_Send(slow, arg, &res);
    if (st == PYGEN_NEXT) {
        Py_DECREF(slow);
        *result = res;
        return PYGEN_NEXT;
    }
    if (self->slow == slow) {
        Py_CLEAR(self->slow);
    }
    Py_DECREF(slow);
    next_idle(self);
    next_done(self);
    if (st == PYGEN_RETURN) {
        *result = res;
        return PYGEN_RETURN;
    }
    it_fail(self->it);
    *result = NULL;
    return PYGEN_ERROR;
}

/* One step of awaiting the next item. */
static PySendResult
next_step(NextItemObject *self, PyObject *arg, PyObject **result)
{
    if (self->slow != NULL) {
        return next_forward(self, arg, result);
    }
    ItemIterObject *it = self->it;
    PyObject *ch = self->ch;
    *result = NULL;
    if (ch == NULL) { /* a pop() already awaited (or cleared by the garbage collector) */
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse an already awaited pop()");
        return PYGEN_ERROR;
    }
    PyObject *buf = slot_get(ch, CH.buf, "_buf");
    if (buf == NULL) {
        goto error;
    }
    int nonempty;
    if (Py_IS_TYPE(buf, Deque_type)) {
        nonempty = Py_SIZE(buf) > 0;
        Py_INCREF(buf);
    }
    else {
        /* A buffer subclass (a checkpoint's) decides by its truth, as `if buf:`
         * does in Python, and may swap ch._buf meanwhile: held, like a local. */
        Py_INCREF(buf);
        nonempty = PyObject_IsTrue(buf);
        if (nonempty < 0) {
            Py_DECREF(buf);
            goto error;
        }
    }
    if (nonempty) {
        /* Channel._try_pop inline, as in the Python iterator. */
        PyObject *item = dq_popleft(buf);
        Py_DECREF(buf);
        if (item == NULL) {
            goto error;
        }
        if (slot_add(ch, CH.popped, "_popped", 1) < 0) {
            Py_DECREF(item);
            goto error;
        }
        int waiting = slot_nonempty(ch, CH.putters, "_putters");
        if (waiting < 0 || (waiting && call_method0(ch, s_room_freed) < 0)) {
            Py_DECREF(item);
            goto error;
        }
        next_done(self);
        *result = item;
        return PYGEN_RETURN;
    }
    Py_DECREF(buf);
    self->slow = PyObject_CallMethodNoArgs(self->port, s_pop_slow);
    if (self->slow == NULL) {
        goto error;
    }
    next_waiting(self);
    return next_forward(self, Py_None, result);
error:
    it_fail(it);
    next_done(self);
    return PYGEN_ERROR;
}

/* Set StopIteration(value) (stealing `value`) and return NULL, as tp_iternext returns a value. */
static PyObject *
return_value(PyObject *value)
{
    if (value == Py_None) {
        Py_DECREF(value);
        return NULL; /* no exception: a return of None */
    }
#if PY_VERSION_HEX >= 0x030C0000
    /* From 3.12 the interpreter awaits through tp_iternext: reuse one
     * StopIteration while nobody else holds it, rather than make one per item. */
    PyObject *exc = stop_cache;
    PyBaseExceptionObject *b = (PyBaseExceptionObject *)exc;
    if (exc == NULL || Py_REFCNT(exc) != 1 || b->traceback != NULL || b->context != NULL || b->cause != NULL) {
        exc = PyObject_CallNoArgs(PyExc_StopIteration);
        if (exc == NULL) {
            Py_DECREF(value);
            return NULL;
        }
        Py_XSETREF(stop_cache, exc);
    }
    Py_XSETREF(((PyStopIterationObject *)exc)->value, value);
    PyErr_SetRaisedException(Py_NewRef(exc));
    return NULL;
#else
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    Py_DECREF(value);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return NULL;
#endif
}

static PyObject *
ItemIter_aiter(PyObject *self)
{
    return Py_NewRef(self);
}

static PyObject *
ItemIter_anext(ItemIterObject *it)
{
    NextItemObject *next = (NextItemObject *)it->next;
    /* Reused once nobody else holds it (an idle one: see next_waiting). */
    if (next != NULL && Py_REFCNT(next) == 1 && next->slow == NULL) {
        return Py_NewRef(next);
    }
    next = PyObject_GC_New(NextItemObject, &NextItem_Type);
    if (next == NULL) {
        return NULL;
    }
    next->it = (ItemIterObject *)Py_NewRef(it);
    next->port = Py_NewRef(it->port);
    next->ch = Py_NewRef(it->ch);
    next->slow = NULL;
    PyObject_GC_Track(next);
    Py_XSETREF(it->next, Py_NewRef((PyObject *)next));
    return (PyObject *)next;
}

static int
ItemIter_traverse(ItemIterObject *it, visitproc visit, void *arg)
{
    Py_VISIT(it->port);
    Py_VISIT(it->ch);
    Py_VISIT(it->next);
    return 0;
}

static int
ItemIter_clear(ItemIterObject *it)
{
    Py_CLEAR(it->port);
    Py_CLEAR(it->ch);
    Py_CLEAR(it->next);
    return 0;
}

static void
ItemIter_dealloc(ItemIterObject *it)
{
    PyObject_GC_UnTrack(it);
    ItemIter_clear(it);
    Py_TYPE(it)->tp_free((PyObject *)it);
}

static PyObject *
ItemIter_repr(ItemIterObject *it)
{
    return PyUnicode_FromFormat("<items of %R>", it->port);
}

static PyAsyncMethods ItemIter_as_async = {
    .am_aiter = (unaryfunc)ItemIter_aiter,
    .am_anext = (unaryfunc)ItemIter_anext,
};

static PyTypeObject ItemIter_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mimo._speedups.ItemIter",
    .tp_doc = "The items of an input port, as `async for` reads them.",
    .tp_basicsize = sizeof(ItemIterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)ItemIter_dealloc,
    .tp_traverse = (traverseproc)ItemIter_traverse,
    .tp_clear = (inquiry)ItemIter_clear,
    .tp_repr = (reprfunc)ItemIter_repr,
    .tp_as_async = &ItemIter_as_async,
};

/* -- NextItem: the awaitable of one __anext__ ---------------------------- */

static PyObject *
NextItem_await(PyObject *self)
{
    return Py_NewRef(self);
}

static PyObject *
NextItem_iternext(NextItemObject *self)
{
    PyObject *res;
    switch (next_step(self, Py_None, &res)) {
    case PYGEN_NEXT:
        return res;
    case PYGEN_RETURN:
        return return_value(res);
    default:
        return NULL;
    }
}

static PySendResult
NextItem_am_send(NextItemObject *self, PyObject *arg, PyObject **result)
{
    return next_step(self, arg, result);
}

static PyObject *
NextItem_send(NextItemObject *self, PyObject *arg)
{
    PyObject *res;
    switch (next_step(self, arg, &res)) {
    case PYGEN_NEXT:
        return res;
    case PYGEN_RETURN: {
        if (res == Py_None) {
            Py_DECREF(res);
            PyErr_SetNone(PyExc_StopIteration);
            return NULL;
        }
        PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, res);
        Py_DECREF(res);
        if (exc != NULL) {
            PyErr_SetObject(PyExc_StopIteration, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

/* Thrown in while waiting: into the slow path, as `yield from` would. */
static PyObject *
NextItem_throw(NextItemObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->slow == NULL) {
        next_done(self);
        return raise_thrown(args, nargs);
    }
    PyObject *meth = PyObject_GetAttr(self->slow, s_throw);
    if (meth == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_Vectorcall(meth, args, nargs, NULL);
    Py_DECREF(meth);
    if (res != NULL) {
        return res; /* the slow path waits again */
    }
    Py_CLEAR(self->slow);
    next_idle(self);
    next_done(self);
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) {
        it_fail(self->it);
    }
    return NULL; /* StopIteration: it returned an item after all */
}

static PyObject *
NextItem_close(NextItemObject *self, PyObject *unused)
{
    PyObject *slow = self->slow;
    self->slow = NULL;
    next_idle(self);
    next_done(self); /* a closed pop() is spent, awaited or not */
    if (slow == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallMethodNoArgs(slow, s_close);
    Py_DECREF(slow);
    return r;
}

static int
NextItem_traverse(NextItemObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->it);
    Py_VISIT(self->port);
    Py_VISIT(self->ch);
    Py_VISIT(self->slow);
    return 0;
}

static int
NextItem_clear(NextItemObject *self)
{
    Py_CLEAR(self->slow);
    Py_CLEAR(self->it);
    Py_CLEAR(self->port);
    Py_CLEAR(self->ch);
    return 0;
}

static void
NextItem_dealloc(NextItemObject *self)
{
    PyObject_GC_UnTrack(self);
    NextItem_clear(self);
    PyObject_GC_Del(self);
}

static PyMethodDef NextItem_methods[] = {
    {"send", (PyCFunction)NextItem_send, METH_O, NULL},
    {"throw", (PyCFunction)(void (*)(void))NextItem_throw, METH_FASTCALL, NULL},
    {"close", (PyCFunction)NextItem_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods NextItem_as_async = {
    .am_await = (unaryfunc)NextItem_await,
    .am_send = (sendfunc)NextItem_am_send,
};

static PyTypeObject NextItem_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mimo._speedups.NextItem",
    .tp_doc = "One pop, made when first awaited: the next item (at the end StopAsyncIteration, or EndOfStream for pop()).",
    .tp_basicsize = sizeof(NextItemObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)NextItem_dealloc,
    .tp_traverse = (traverseproc)NextItem_traverse,
    .tp_clear = (inquiry)NextItem_clear,
    .tp_as_async = &NextItem_as_async,
    .tp_iternext = (iternextfunc)NextItem_iternext,
    .tp_methods = NextItem_methods,
};

static PyObject *
in_aiter(PyObject *port, PyObject *unused)
{
    PyObject *ch = slot_get(port, IN.ch, "_ch");
    if (ch == NULL) {
        return NULL;
    }
    /* A Channel subclass may pop differently: the port's own __anext__ reads it. */
    if (!Py_IS_TYPE(ch, Channel_type)) {
        return Py_NewRef(port);
    }
    ItemIterObject *it = PyObject_GC_New(ItemIterObject, &ItemIter_Type);
    if (it == NULL) {
        return NULL;
    }
    it->port = Py_NewRef(port);
    it->ch = Py_NewRef(ch);
    it->next = NULL;
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

static PyObject *
in_pop(PyObject *port, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *timeout = Py_None;
    if (nargs + nkw > 1 || (nkw == 1 && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout"))) {
        PyErr_SetString(PyExc_TypeError, "pop() takes one optional argument, timeout");
        return NULL;
    }
    if (nargs + nkw == 1) {
        timeout = args[0];
    }
    PyObject *ch = slot_get(port, IN.ch, "_ch");
    if (ch == NULL) {
        return NULL;
    }
    /* A timed pop, or a channel that may pop its own way: the Python pop. */
    if (timeout != Py_None || !Py_IS_TYPE(ch, Channel_type)) {
        PyObject *call[2] = {port, timeout};
        return PyObject_Vectorcall(py_pop, call, timeout != Py_None ? 2 : 1, NULL);
    }
    NextItemObject *next = (NextItemObject *)pop_cache;
    /* The last pop's, when spent and let go of (the common `await port.pop()`). */
    if (next != NULL && Py_REFCNT(next) == 1 && next->ch == NULL && next->slow == NULL) {
        next->port = Py_NewRef(port);
        next->ch = Py_NewRef(ch);
        return Py_NewRef((PyObject *)next);
    }
    next = PyObject_GC_New(NextItemObject, &NextItem_Type);
    if (next == NULL) {
        return NULL;
    }
    next->it = NULL;
    next->port = Py_NewRef(port);
    next->ch = Py_NewRef(ch);
    next->slow = NULL;
    PyObject_GC_Track(next);
    Py_XSETREF(pop_cache, Py_NewRef((PyObject *)next));
    return (PyObject *)next;
}

static PyMethodDef pop_def = {
    "pop",
    (PyCFunction)(void (*)(void))in_pop,
    METH_FASTCALL | METH_KEYWORDS,
    "pop($self, timeout=None)\n--\n\n"
    "The next item; waits while none is buffered. ``EndOfStream`` at the end.\n\n"
    "With ``timeout`` (seconds), ``TimeoutError`` if no item came in time; no item is taken then.",
};

static PyMethodDef aiter_def = {
    "__aiter__",
    (PyCFunction)in_aiter,
    METH_NOARGS,
    "__aiter__($self, /)\n--\n\nThe port's items, until every producer has closed and the buffer is drained.",
};

/* ======================================================================== */
/* setup()                                                                  */

static int
slot_offset(PyObject *cls, const char *name, Py_ssize_t *off)
{
    PyObject *d = PyObject_GetAttrString(cls, name);
    if (d == NULL) {
        return -1;
    }
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        ok = m->type == Py_T_OBJECT_EX && !(m->flags & Py_READONLY) && m->offset > 0;
        if (ok) {
            *off = m->offset;
        }
    }
    Py_DECREF(d);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a __slots__ field", ((PyTypeObject *)cls)->tp_name, name);
        return -1;
    }
    return 0;
}

static PyCFunction
method_of(PyObject *cls, const char *name, int flags)
{
    PyObject *d = PyObject_GetAttrString(cls, name);
    if (d == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyCFunction f = NULL;
    if (Py_IS_TYPE(d, &PyMethodDescr_Type)) {
        PyMethodDef *m = ((PyMethodDescrObject *)d)->d_method;
        if (m->ml_flags == flags) {
            f = m->ml_meth;
        }
    }
    Py_DECREF(d);
    return f;
}

static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *channel, *inport, *outport, *end, *deque;
    if (!PyArg_ParseTuple(args, "O!O!O!OO!:setup", &PyType_Type, &channel, &PyType_Type, &inport, &PyType_Type,
                          &outport, &end, &PyType_Type, &deque)) {
        return NULL;
    }
    if (!PyExceptionClass_Check(end)) {
        PyErr_SetString(PyExc_TypeError, "setup: the end exception must be an exception class");
        return NULL;
    }
    if (Channel_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() was already called");
        return NULL;
    }
    if (slot_offset(channel, "_buf", &CH.buf) < 0 || slot_offset(channel, "_cap", &CH.cap) < 0 ||
        slot_offset(channel, "_high", &CH.high) < 0 || slot_offset(channel, "_popped", &CH.popped) < 0 ||
        slot_offset(channel, "_getters", &CH.getters) < 0 || slot_offset(channel, "_putters", &CH.putters) < 0 ||
        slot_offset(outport, "_one", &OUT.one) < 0 || slot_offset(outport, "_one_push", &OUT.one_push) < 0 ||
        slot_offset(outport, "_pending", &OUT.pending) < 0 || slot_offset(outport, "_pushed", &OUT.pushed) < 0 ||
        slot_offset(outport, "count", &OUT.count) < 0 || slot_offset(inport, "_ch", &IN.ch) < 0) {
        return NULL;
    }
    py_pop = PyObject_GetAttrString(inport, "pop");
    if (py_pop == NULL) {
        return NULL;
    }
    deque_append = method_of(deque, "append", METH_O);
    deque_popleft = method_of(deque, "popleft", METH_NOARGS);
    Channel_type = (PyTypeObject *)Py_NewRef(channel);
    InputPort_type = (PyTypeObject *)Py_NewRef(inport);
    OutputPort_type = (PyTypeObject *)Py_NewRef(outport);
    Deque_type = (PyTypeObject *)Py_NewRef(deque);
    EndOfStream = Py_NewRef(end);
    PyObject *push = PyDescr_NewMethod(OutputPort_type, &push_def);
    if (push == NULL) {
        return NULL;
    }
    PyObject *aiter = PyDescr_NewMethod(InputPort_type, &aiter_def);
    if (aiter == NULL) {
        Py_DECREF(push);
        return NULL;
    }
    PyObject *pop = PyDescr_NewMethod(InputPort_type, &pop_def);
    if (pop == NULL) {
        Py_DECREF(push);
        Py_DECREF(aiter);
        return NULL;
    }
    return Py_BuildValue("(NNN)", push, aiter, pop);
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(Channel, InputPort, OutputPort, EndOfStream, deque, /)\n--\n\n"
     "Read the classes' slot offsets; return (OutputPort.push, InputPort.__aiter__, InputPort.pop) in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mimo._speedups",
    .m_doc = "mimo's optional compiled core (see mimo.speedups).",
    .m_size = -1,
    .m_methods = module_methods,
};

#define INTERN(var, s)                                   \
    do {                                                 \
        if ((var = PyUnicode_InternFromString(s)) == NULL) \
            return NULL;                                 \
    } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    INTERN(s_append, "append");
    INTERN(s_popleft, "popleft");
    INTERN(s_wake_getter, "_wake_getter");
    INTERN(s_room_freed, "_room_freed");
    INTERN(s_not_awaited, "_not_awaited");
    INTERN(s_push_slow, "_push_slow");
    INTERN(s_pop_slow, "_pop_slow");
    INTERN(s_throw, "throw");
    INTERN(s_close, "close");
    INTERN(s_stream, "stream");
    INTERN(s_name, "name");
    if (PyType_Ready(&Pushed_Type) < 0 || PyType_Ready(&ItemIter_Type) < 0 || PyType_Ready(&NextItem_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "Pushed", (PyObject *)&Pushed_Type) < 0 ||
        PyModule_AddObjectRef(m, "ItemIter", (PyObject *)&ItemIter_Type) < 0 ||
        PyModule_AddObjectRef(m, "NextItem", (PyObject *)&NextItem_Type) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
