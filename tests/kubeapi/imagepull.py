"""imagepull.py - images the test kubelet cannot pull.

An image whose name starts with `unpullable.invalid/` (the .invalid top-level
domain never resolves, RFC 2606) is never pulled. As the real kubelet shows it:
each pull attempt fails and the container waits with ErrImagePull; from the
next pod sync until the next attempt it waits with ImagePullBackOff
("Back-off pulling image ..."), the back-off starting at 10 s and doubling up
to 300 s. The pod stays Pending, Ready/ContainersReady False. Events: Pulling,
Failed (the pull error), Failed "Error: ErrImagePull", then BackOff and
Failed "Error: ImagePullBackOff".
The same for an image of an archive's repository that the archive does not
hold (a wrong digest or tag) or that cannot be unpacked (ociimage.py).
"""
import time

PREFIX = "unpullable.invalid/"
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
RESYNC = 1.0   # the kubelet's next sync after a failed pull shows the back-off


def unpullable(image):
    return image.startswith(PREFIX)


def pull_error(ref):
    repo, _, tag = ref.rpartition(":")
    path = repo[len(PREFIX):]
    return ('rpc error: code = Unknown desc = failed to pull and unpack image "%s": failed to resolve '
            'reference "%s": failed to do request: Head "https://unpullable.invalid/v2/%s/manifests/%s": '
            'dial tcp: lookup unpullable.invalid: no such host' % (ref, ref, path, tag))


def failure(kubelet, image, ref):
    """The runtime's pull error for image (ref: normalized), None if it pulls."""
    if unpullable(image):
        return pull_error(ref)
    archives = getattr(kubelet, "archives", None)
    return archives.pull_error(image) if archives is not None else None


def blocked(kubelet, rt, pod, c, ref):
    """True while c's image cannot be pulled: c.state and the events are set.
    ref is the normalized image reference (name:tag)."""
    now, key = time.monotonic(), (rt.ns, rt.name)
    st = c.__dict__.get("pull")
    if st is None or now >= st["next"]:   # (no new attempt while backing off)
        err = failure(kubelet, c.image, ref)
        if err is None:
            return False
        st = c.__dict__.setdefault("pull", {"next": 0.0, "delay": 0.0, "failed_at": None})
    shown = (c.state.get("waiting") or {}).get("reason")
    if now < st["next"]:
        if now - st["failed_at"] >= RESYNC or shown == "ImagePullBackOff":
            msg = 'Back-off pulling image "%s"' % c.image
            if shown != "ImagePullBackOff":
                kubelet._event(pod, "Normal", "BackOff", msg, c)
                kubelet._event(pod, "Warning", "Failed", "Error: ImagePullBackOff", c)
            c.state = {"waiting": {"reason": "ImagePullBackOff", "message": msg}}
            kubelet._at(st["next"], key)
        else:
            kubelet._at(st["failed_at"] + RESYNC, key)
        return True
    kubelet._event(pod, "Normal", "Pulling", 'Pulling image "%s"' % c.image, c)
    kubelet._event(pod, "Warning", "Failed", 'Failed to pull image "%s": %s' % (c.image, err), c)
    kubelet._event(pod, "Warning", "Failed", "Error: ErrImagePull", c)
    st["delay"] = min(BACKOFF_MAX, st["delay"] * 2 or BACKOFF_START)
    st["failed_at"], st["next"] = now, now + st["delay"]
    c.state = {"waiting": {"reason": "ErrImagePull", "message": err}}
    kubelet._at(now + RESYNC, key)
    return True
