"""The benchmark's outputs: a table of ratios, results.json, bandwidth.png, and the README targets checked."""
import json
from pathlib import Path
from typing import Dict, List

LIMIT = "limit (same traffic, no math)"
LIMIT8 = "limit 8-bit state (same traffic, no math)"
OURS_GLOBAL, OURS_LOCAL, OURS_KERNEL = "ours (global)", "ours (local)", "ours kernel (rmspropKer)"
OURS8 = "ours 8-bit state (global)"
PUZZLELIB_UPDATE = "PuzzleLib 1.0.3 update()"


def _limitFor(results: Dict, entry: Dict):
	"""The seconds of the limit that moves the same bytes as ``entry``, if this run measured one."""
	for name in (LIMIT, LIMIT8):
		if name in results and results[name]["bytesPerElement"] == entry["bytesPerElement"]:
			return results[name]["seconds"]
	return None


def _fastest(results: Dict, prefix: str):
	times = [r["seconds"] for name, r in results.items() if name.startswith(prefix)]
	return min(times) if times else None


def targets(workloads: List[Dict], backend: str) -> List[Dict]:
	"""The issue's targets, each with the measured value (a ratio) and whether it is met in this run."""
	out = []
	one64k = next((w["results"][OURS_GLOBAL]["seconds"] for w in workloads if w["kind"] == "single" and w["elements"] == 64000
				   and OURS_GLOBAL in w["results"]), None)

	def add(what, value, goal, atMost=False):
		if value is not None:
			out.append({"target": what, "measured": round(value, 3), "goal": goal, "met": value <= goal if atMost else value >= goal})

	for w in workloads:
		r = w["results"]
		for mode, mine in (("global", OURS_GLOBAL), ("local", OURS_LOCAL)):
			peer = r.get("%s (%s)" % (PUZZLELIB_UPDATE, mode), {}).get("seconds")
			if peer and mine in r:
				add("%s, %s state: update() times faster than PuzzleLib's update()" % (w["name"], mode), peer / r[mine]["seconds"], 1.0)
		ours = r.get(OURS_GLOBAL, {}).get("seconds")
		if ours is None:
			continue
		limitShare = r[LIMIT]["seconds"] / ours if LIMIT in r else None
		torch = _fastest(r, "torch")

		if w["kind"] == "single":
			big = w["elements"] >= (1e7 if backend == "cpu" else 2 ** 24)
			if big:
				add("%s: share of the same-traffic limit" % w["name"], limitShare, 0.9)
			if backend == "cpu" and w["elements"] == 10 ** 7 and torch:
				add("%s: times faster than torch.optim.RMSprop" % w["name"], torch / ours, 5.0)
			if backend == "cpu" and w["elements"] == 10 ** 7 and OURS8 in r:
				add("%s: 8-bit state update() time / 32-bit (<= 0.8)" % w["name"], r[OURS8]["seconds"] / ours, 0.8, atMost=True)
				add("%s: 8-bit state update() time / 32-bit (<= 1.0)" % w["name"], r[OURS8]["seconds"] / ours, 1.0, atMost=True)
				add("%s: 8-bit state, share of its same-traffic limit" % w["name"], _limitFor(r, r[OURS8]) / r[OURS8]["seconds"]
					if _limitFor(r, r[OURS8]) else None, 0.9)
				add("%s: 8-bit state bytes / 32-bit (<= 0.27)" % w["name"], r[OURS8]["stateBytes"] / r[OURS_GLOBAL]["stateBytes"],
					0.27, atMost=True)
			kernel, puzzlelib = r.get(OURS_KERNEL, {}).get("seconds"), _fastest(r, "PuzzleLib 1.0.3 kernel")
			if puzzlelib and kernel:
				add("%s: our kernel, times faster than PuzzleLib's kernel" % w["name"], puzzlelib / kernel, 1.0)
		elif w["kind"] == "resnet50" and torch:
			add("%s: times faster than torch.optim.RMSprop" % w["name"], torch / ours, 2.5 if backend == "cpu" else 1.5)
		elif w["kind"] == "tiny" and w["tensors"] == 1000 and one64k:
			add("%s, global: time / one tensor of 64,000 (<= 1.5)" % w["name"], ours / one64k, 1.5, atMost=True)
		elif w["kind"] == "small" and OURS_LOCAL in r:
			add("%s: global time / local time (>= 1/1.5)" % w["name"], ours / r[OURS_LOCAL]["seconds"], 1 / 1.5)

	return out


def table(workloads: List[Dict]) -> str:
	lines = ["%-22s %-36s %10s %9s %9s %9s" % ("workload", "candidate", "ms/step", "GB/s", "of limit", "ours is")]
	for w in workloads:
		r = w["results"]
		ours = r.get(OURS_GLOBAL, {}).get("seconds")
		for name, m in r.items():
			limit = _limitFor(r, m)
			share = "%8.0f%%" % (100 * limit / m["seconds"]) if limit else "%9s" % "-"
			speed = "%8.1fx" % (m["seconds"] / ours) if ours and not name.startswith("ours") and name != LIMIT else "%9s" % "-"
			lines.append("%-22s %-36s %10.3f %9.1f %s %s" % (w["name"], name, 1e3 * m["seconds"], m["gbps"], share, speed))
		lines.append("")
	return "\n".join(lines)


def plot(workloads: List[Dict], path: Path, title: str) -> bool:
	"""GB/s against N for the single-tensor runs, the limit drawn bold; False if matplotlib is missing."""
	try:
		import matplotlib
		matplotlib.use("Agg")
		import matplotlib.pyplot as plt
	except ImportError:
		return False

	single = [w for w in workloads if w["kind"] == "single"]
	dtypes = list(dict.fromkeys(w.get("dtype", "float32") for w in single))
	names = list(dict.fromkeys(name for w in single for name in w["results"]))

	fig, ax = plt.subplots(figsize=(9, 5.5))
	ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more candidates than the default cycle's 10 colours
	for dtype in dtypes:
		for name in names:
			points = [(w["elements"], w["results"][name]["gbps"]) for w in single
					  if name in w["results"] and w.get("dtype", "float32") == dtype]
			if not points:
				continue
			style = dict(linewidth=3, linestyle="--") if name in (LIMIT, LIMIT8) else dict(marker="o" if dtype == dtypes[0] else "s")
			ax.plot(*zip(*points), label=name + ("" if len(dtypes) == 1 else " (%s)" % dtype), **style)

	ax.set_xscale("log")
	ax.set_xlabel("parameters in one tensor (N)")
	ax.set_ylabel("effective GB/s (bytes moved per parameter: 20 float32, 10 float16,\n8-bit state 14 float32; triad 12)")
	ax.set_title(title, fontsize=9)
	ax.grid(True, which="both", alpha=0.3)
	if ax.get_legend_handles_labels()[0]:
		ax.legend(fontsize=8)
	fig.tight_layout()
	fig.savefig(path, dpi=120)
	plt.close(fig)
	return True


def write(results: Dict, out: Path) -> None:
	out.mkdir(parents=True, exist_ok=True)
	(out / "results.json").write_text(json.dumps(results, indent=1))
