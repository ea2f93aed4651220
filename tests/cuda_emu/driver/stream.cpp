/* Streams and events. By default work runs when it is submitted. In deferred mode (CUDA_EMU_DEFERRED=1, or
 * cudaEmuSetDeferred) it waits in its stream's queue until a synchronizing call needs it: a synchronous copy,
 * cuStreamSynchronize, cuEventSynchronize, cuCtxSynchronize, a free. So a missing synchronize shows up as a stale
 * value. Queued work keeps the legacy default stream's ordering: NULL-stream work waits for all earlier work of
 * blocking streams, and their work waits for earlier NULL-stream work. A host that polls (cuStreamQuery,
 * cuEventQuery) is waiting, so polling runs the work too. */
#include <time.h>

#include <cstring>
#include <deque>
#include <memory>
#include <set>

#include "emu.h"

namespace emu
{

struct QueuedStream : Stream
{
	std::deque<std::pair<unsigned long long, std::function<CUresult()>>> pending;
};

static QueuedStream nullStream;
static std::set<QueuedStream *> streams = {&nullStream};
static unsigned long long sequence = 0;
static CUresult deferredError = CUDA_SUCCESS;

struct Event
{
	QueuedStream *stream = nullptr;
	unsigned long long sequence = 0;
	bool recorded = false, complete = false;
	double seconds = 0.0;
};
static std::map<Event *, std::shared_ptr<Event>> events;

static double now()
{
	timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + 1e-9 * t.tv_nsec;
}

static QueuedStream *queued(CUstream handle)
{
	/* CU_STREAM_LEGACY and CU_STREAM_PER_THREAD: the one default stream here */
	if (handle == nullptr || handle == CU_STREAM_LEGACY || handle == CU_STREAM_PER_THREAD)
		return &nullStream;
	return reinterpret_cast<QueuedStream *>(handle);
}

Stream *streamOf(CUstream handle) { return queued(handle); }

unsigned long long lastSequence(Stream *stream)
{
	auto *s = static_cast<QueuedStream *>(stream);
	return s->pending.empty() ? 0 : s->pending.back().first;
}

CUresult submit(CUstream handle, std::function<CUresult()> work)
{
	QueuedStream *s = queued(handle);
	if (handle != nullptr && s != &nullStream && streams.count(s) == 0)
		return fail(CUDA_ERROR_INVALID_HANDLE, "stream %p does not exist (destroyed?)", (void *)handle);
	if (!settings.deferred)
		return work();
	s->pending.emplace_back(++sequence, std::move(work));
	return CUDA_SUCCESS;
}

/* Runs the queued work of ``s`` up to ``upTo``, each operation after what it depends on; faults are kept. */
static void runUntil(QueuedStream *s, unsigned long long upTo)
{
	while (!s->pending.empty() && s->pending.front().first <= upTo)
	{
		auto op = std::move(s->pending.front());
		s->pending.pop_front();

		if (s == &nullStream)
		{
			for (QueuedStream *other : std::vector<QueuedStream *>(streams.begin(), streams.end()))
				if (other != &nullStream && other->blocking)
					runUntil(other, op.first - 1);
		}
		else if (s->blocking)
			runUntil(&nullStream, op.first - 1);

		CUresult e = op.second();
		if (e != CUDA_SUCCESS && deferredError == CUDA_SUCCESS)
			deferredError = e;
	}
}

CUresult drain(Stream *stream, unsigned long long upTo)
{
	runUntil(static_cast<QueuedStream *>(stream), upTo);
	/* a fault in queued work is reported by the synchronizing call that ran it */
	CUresult e = deferredError;
	deferredError = CUDA_SUCCESS;
	return e;
}

CUresult drainAll()
{
	for (QueuedStream *s : std::vector<QueuedStream *>(streams.begin(), streams.end()))
		runUntil(s, ~0ull);
	return drain(&nullStream, ~0ull);
}

}

using namespace emu;

extern "C" {

CUresult cuStreamCreate(CUstream *phStream, unsigned int flags)
{
	EMU_LOCKED;
	auto *s = new QueuedStream();
	s->blocking = (flags & CU_STREAM_NON_BLOCKING) == 0;
	streams.insert(s);
	*phStream = reinterpret_cast<CUstream>(s);
	return CUDA_SUCCESS;
}

CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int)
{
	return cuStreamCreate(phStream, flags);
}

CUresult cuStreamDestroy(CUstream handle)
{
	EMU_LOCKED;
	QueuedStream *s = queued(handle);
	if (s == &nullStream || streams.count(s) == 0)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy: %p is not a stream", (void *)handle);
	CUresult e = drain(s, ~0ull);
	streams.erase(s);
	delete s;
	return e;
}

CUresult cuStreamSynchronize(CUstream handle)
{
	EMU_LOCKED;
	return drain(queued(handle), ~0ull);
}

CUresult cuStreamQuery(CUstream handle)
{
	EMU_LOCKED;
	return drain(queued(handle), ~0ull);
}

CUresult cuCtxSynchronize(void)
{
	EMU_LOCKED;
	Context *ctx;
	if (CUresult e = current(&ctx, "cuCtxSynchronize"))
		return e;
	return drainAll();
}

CUresult cuEventCreate(CUevent *phEvent, unsigned int)
{
	EMU_LOCKED;
	auto event = std::make_shared<Event>();
	events[event.get()] = event;
	*phEvent = reinterpret_cast<CUevent>(event.get());
	return CUDA_SUCCESS;
}

static std::shared_ptr<Event> eventOf(CUevent handle)
{
	auto it = events.find(reinterpret_cast<Event *>(handle));
	return it == events.end() ? nullptr : it->second;
}

CUresult cuEventRecord(CUevent handle, CUstream stream)
{
	EMU_LOCKED;
	std::shared_ptr<Event> event = eventOf(handle);
	if (!event)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventRecord: %p is not an event", (void *)handle);
	event->recorded = true, event->complete = false;
	event->stream = queued(stream);
	CUresult e = submit(stream, [event] { event->complete = true; event->seconds = now(); return CUDA_SUCCESS; });
	event->sequence = lastSequence(event->stream);
	return e;
}

CUresult cuEventSynchronize(CUevent handle)
{
	EMU_LOCKED;
	std::shared_ptr<Event> event = eventOf(handle);
	if (!event)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventSynchronize: %p is not an event", (void *)handle);
	return event->recorded && !event->complete ? drain(event->stream, event->sequence) : CUDA_SUCCESS;
}

CUresult cuEventQuery(CUevent handle)
{
	return cuEventSynchronize(handle);
}

CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end)
{
	EMU_LOCKED;
	std::shared_ptr<Event> a = eventOf(start), b = eventOf(end);
	if (!a || !b)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventElapsedTime: not an event");
	if (!a->complete || !b->complete)
		return fail(CUDA_ERROR_NOT_READY, "cuEventElapsedTime: an event has not completed");
	*ms = (float)((b->seconds - a->seconds) * 1e3);
	return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent handle)
{
	EMU_LOCKED;
	if (events.erase(reinterpret_cast<Event *>(handle)) == 0)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuEventDestroy: %p is not an event", (void *)handle);
	return CUDA_SUCCESS;
}

CUresult cuStreamWaitEvent(CUstream stream, CUevent handle, unsigned int)
{
	EMU_LOCKED;
	std::shared_ptr<Event> event = eventOf(handle);
	if (!event)
		return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamWaitEvent: %p is not an event", (void *)handle);
	if (!event->recorded)
		return CUDA_SUCCESS;
	QueuedStream *source = event->stream;
	unsigned long long upTo = event->sequence;
	return submit(stream, [source, upTo] { runUntil(source, upTo); return CUDA_SUCCESS; });
}

/* Operations queued and not yet run (deferred mode), for the tests. */
int cudaEmuPendingWork(void)
{
	EMU_LOCKED;
	size_t count = 0;
	for (QueuedStream *s : streams)
		count += s->pending.size();
	return (int)count;
}

}
