"""Small reference modules with PuzzleLib's module protocol, to demonstrate and test the optimizer.

They compute on the host with NumPy (``get()`` / ``set()``), so they run on either backend; they are not
meant to be fast. Import paths mirror PuzzleLib's (``Modules.Linear``, ``Containers.Graph``, ``Cost.MSE``).
"""
