"""Planting porting bugs in the reference for sensitivity checks (make_flow.py, make_crossimpl.py)."""


class Patch:
    """Temporarily replaces an attribute of an object or a class. A class attribute is taken from the class __dict__ so
    that a staticmethod is put back as the staticmethod it was, not as the plain function getattr returns."""

    def __init__(self, obj, name, value):
        self.obj, self.name, self.value = obj, name, value

    def __enter__(self):
        self.old = self.obj.__dict__[self.name] if isinstance(self.obj, type) else getattr(self.obj, self.name)
        setattr(self.obj, self.name, self.value)

    def __exit__(self, *exc):
        setattr(self.obj, self.name, self.old)
