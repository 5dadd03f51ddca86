package liminal;

import com.facebook.presto.Session;
import com.facebook.presto.tests.DistributedQueryRunner;
import com.facebook.presto.tpch.TpchPlugin;

import java.util.Map;

import static com.facebook.presto.testing.TestingSession.testSessionBuilder;

/**
 * PrestoServer runs a one-node PrestoDB coordinator on 127.0.0.1:PORT with
 * the tpch catalog until it is killed. Usage: PrestoServer PORT. It prints
 * "LIMINAL_PRESTO_READY <url>" once queries can run.
 */
public final class PrestoServer
{
    private PrestoServer() {}

    public static void main(String[] args)
            throws Exception
    {
        int port = Integer.parseInt(args[0]);
        Session session = testSessionBuilder().setCatalog("tpch").setSchema("tiny").build();
        DistributedQueryRunner runner = DistributedQueryRunner.builder(session)
                .setNodeCount(1)
                .setCoordinatorProperties(Map.of("http-server.http.port", Integer.toString(port)))
                .build();
        runner.installPlugin(new TpchPlugin());
        runner.createCatalog("tpch", "tpch");
        Runtime.getRuntime().addShutdownHook(new Thread(runner::close));
        System.out.println("LIMINAL_PRESTO_READY " + runner.getCoordinator().getBaseUrl());
        System.out.flush();
        Thread.currentThread().join();
    }
}
